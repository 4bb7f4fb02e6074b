//! The instance id of a process.

/// A process-unique instance id: the pod name or host name plus a random
/// suffix, so a restarted process is a new producer instance.
pub fn instance_id(role: &str) -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| role.to_string());
    let suffix: u32 = rand::random();
    let mut id = format!("{host}-{suffix:08x}");
    // Keep within the envelope's limit even for very long host names.
    if id.len() > crate::envelope::MAX_PRODUCER_ID_BYTES {
        let keep = crate::envelope::MAX_PRODUCER_ID_BYTES - 9;
        let mut cut = keep;
        while !host.is_char_boundary(cut) {
            cut -= 1;
        }
        id = format!("{}-{suffix:08x}", &host[..cut]);
    }
    id
}
