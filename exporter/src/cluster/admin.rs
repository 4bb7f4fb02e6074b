//! Group requests rdkafka's safe API does not offer, made through
//! librdkafka's admin API on a client the exporter already has: every
//! consumer group the cluster knows (ListGroups), and any group's committed
//! offsets on every partition it has committed on (OffsetFetch), by name,
//! without a Kafka client per group.
//!
//! Each call puts its requests on a queue of its own and waits on it with a
//! deadline; the handles librdkafka gives out are freed on every path by
//! the guards below.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;

use crate::Error;

mod topics;
pub use topics::{brokers, watermarks, Broker, Partition};

/// Requests of [`committed_offsets`] in flight at once: enough to hide
/// round trips, few enough not to flood a coordinator.
const IN_FLIGHT: usize = 32;

/// A group's committed offset on one partition: the next offset it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
    /// The committed offset (never negative: partitions without a commit
    /// are left out).
    pub offset: i64,
}

/// Every consumer group the cluster lists, sorted. An answer missing some
/// broker's groups is an error: a partial list would make groups vanish and
/// come back.
pub fn list_groups(client: &BaseConsumer, timeout: Duration) -> Result<Vec<String>, Error> {
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS;
    let event = request(client, op, timeout, "list groups", |rk, options, queue| {
        // SAFETY: the handle, options and queue are live; librdkafka copies
        // what it needs from the options before returning.
        unsafe { rd::rd_kafka_ListConsumerGroups(rk, options, queue) }
    })?;
    // SAFETY: the event is a ListConsumerGroups result (the only request on
    // this queue); the arrays and strings live as long as the event.
    unsafe {
        let result = present(
            rd::rd_kafka_event_ListConsumerGroups_result(event.0),
            "list groups",
        )?;
        let mut errors = 0;
        let errs = rd::rd_kafka_ListConsumerGroups_result_errors(result, &mut errors);
        if errors > 0 {
            let code = rd::rd_kafka_error_code(*errs);
            return Err(failure("list groups", code));
        }
        let mut n = 0;
        let listings = rd::rd_kafka_ListConsumerGroups_result_valid(result, &mut n);
        let mut names: Vec<String> = (0..n)
            .map(|i| text(rd::rd_kafka_ConsumerGroupListing_group_id(*listings.add(i))))
            .collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }
}

/// The committed offsets of each of `groups` on every partition it has
/// committed on, in the order of `groups`; a group whose answer did not
/// come by the deadline, or came with an error, gets that error.
pub fn committed_offsets(
    client: &BaseConsumer,
    groups: &[&str],
    timeout: Duration,
) -> Vec<Result<Vec<Committed>, Error>> {
    let rk = client.client().native_ptr();
    let queue = Queue::new(rk);
    let options = match Options::new(
        rk,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        timeout,
    ) {
        Ok(options) => options,
        Err(e) => return groups.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut answers: Vec<Result<Vec<Committed>, Error>> =
        groups.iter().map(|_| Err(no_answer())).collect();
    let index: HashMap<&str, usize> = groups.iter().enumerate().map(|(i, g)| (*g, i)).collect();
    let deadline = Instant::now() + timeout + Duration::from_secs(1);
    let mut next = 0;
    let mut pending = 0;
    while (next < groups.len() || pending > 0) && Instant::now() < deadline {
        while next < groups.len() && pending < IN_FLIGHT {
            if let Err(e) = request_offsets(rk, groups[next], &options, &queue) {
                answers[next] = Err(e);
            } else {
                pending += 1;
            }
            next += 1;
        }
        let Some(event) = queue.poll(deadline) else {
            break;
        };
        pending -= 1;
        for (group, answer) in offsets_of(&event) {
            if let Some(&i) = index.get(group.as_str()) {
                answers[i] = answer;
            }
        }
    }
    answers
}

/// A group whose offsets did not come by the deadline.
pub fn no_answer() -> Error {
    failure(
        "group offsets",
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__TIMED_OUT,
    )
}

/// Asks for one group's offsets on every partition (librdkafka takes one
/// group per request).
fn request_offsets(
    rk: *mut rd::rd_kafka_t,
    group: &str,
    options: &Options,
    queue: &Queue,
) -> Result<(), Error> {
    let name = CString::new(group).map_err(|_| {
        failure(
            "group offsets",
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__INVALID_ARG,
        )
    })?;
    // SAFETY: `name` outlives the call; a null partition list asks for all
    // partitions; the request object is copied by the call and freed here.
    unsafe {
        let mut request = rd::rd_kafka_ListConsumerGroupOffsets_new(name.as_ptr(), ptr::null());
        rd::rd_kafka_ListConsumerGroupOffsets(rk, &mut request, 1, options.0, queue.0);
        rd::rd_kafka_ListConsumerGroupOffsets_destroy(request);
    }
    Ok(())
}

/// The groups answered in one ListConsumerGroupOffsets result event.
fn offsets_of(event: &Event) -> Vec<(String, Result<Vec<Committed>, Error>)> {
    if let Err(e) = event.check("group offsets") {
        // An event-level error names no group; the caller keeps the
        // groups it has no answer for as timed out.
        tracing::debug!(error = %e, "group offsets");
        return Vec::new();
    }
    // SAFETY: the event is a ListConsumerGroupOffsets result; the group
    // results, partition lists and strings live as long as the event.
    unsafe {
        let result = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.0);
        if result.is_null() {
            return Vec::new();
        }
        let mut n = 0;
        let groups = rd::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut n);
        (0..n)
            .map(|i| {
                let group = *groups.add(i);
                let name = text(rd::rd_kafka_group_result_name(group));
                let error = rd::rd_kafka_group_result_error(group);
                if !error.is_null() {
                    return (
                        name,
                        Err(failure("group offsets", rd::rd_kafka_error_code(error))),
                    );
                }
                let list = rd::rd_kafka_group_result_partitions(group);
                let mut committed = Vec::new();
                if !list.is_null() {
                    let list = &*list;
                    let elems = std::slice::from_raw_parts(list.elems, list.cnt.max(0) as usize);
                    for e in elems {
                        if e.err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0 {
                            committed.push(Committed {
                                topic: text(e.topic),
                                partition: e.partition,
                                offset: e.offset,
                            });
                        }
                    }
                }
                (name, Ok(committed))
            })
            .collect()
    }
}

/// Sends one admin request of kind `op` (`send` puts it on the queue it is
/// given, with options carrying `timeout`) and returns its answer, checked,
/// within `timeout` and a second.
pub(super) fn request(
    client: &BaseConsumer,
    op: rd::rd_kafka_admin_op_t,
    timeout: Duration,
    operation: &'static str,
    send: impl FnOnce(
        *mut rd::rd_kafka_t,
        *const rd::rd_kafka_AdminOptions_t,
        *mut rd::rd_kafka_queue_t,
    ),
) -> Result<Event, Error> {
    let rk = client.client().native_ptr();
    let queue = Queue::new(rk);
    let options = Options::new(rk, op, timeout)?;
    send(rk, options.0, queue.0);
    let event = queue
        .poll(Instant::now() + timeout + Duration::from_secs(1))
        .ok_or_else(|| failure(operation, RDKafkaRespErr::RD_KAFKA_RESP_ERR__TIMED_OUT))?;
    event.check(operation)?;
    Ok(event)
}

/// A result pointer taken from an answer, or the error of a malformed one.
pub(super) fn present<T>(result: *const T, operation: &'static str) -> Result<*const T, Error> {
    if result.is_null() {
        Err(failure(
            operation,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__BAD_MSG,
        ))
    } else {
        Ok(result)
    }
}

/// An admin failure as the exporter's error.
pub(super) fn failure(operation: &'static str, code: RDKafkaRespErr) -> Error {
    Error::Kafka {
        operation,
        source: KafkaError::AdminOp(RDKafkaErrorCode::from(code)),
    }
}

/// A C string librdkafka owns, copied (lossily: names are bytes).
///
/// # Safety
/// `s` is null or a NUL-terminated string valid for the call.
pub(super) unsafe fn text(s: *const c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // SAFETY: as the caller promises.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// A queue of this client's, destroyed on drop.
pub(super) struct Queue(*mut rd::rd_kafka_queue_t);

impl Queue {
    pub(super) fn new(rk: *mut rd::rd_kafka_t) -> Queue {
        // SAFETY: `rk` is a live client handle.
        Queue(unsafe { rd::rd_kafka_queue_new(rk) })
    }

    /// The next event, or `None` when `deadline` passed first.
    pub(super) fn poll(&self, deadline: Instant) -> Option<Event> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: the queue is live until drop.
        let event = unsafe { rd::rd_kafka_queue_poll(self.0, ms) };
        (!event.is_null()).then_some(Event(event))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

/// Admin options with a request timeout, destroyed on drop.
pub(super) struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Options {
    pub(super) fn new(
        rk: *mut rd::rd_kafka_t,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
    ) -> Result<Options, Error> {
        // SAFETY: `rk` is a live client handle.
        let options = Options(unsafe { rd::rd_kafka_AdminOptions_new(rk, op) });
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut errstr = [0 as c_char; 256];
        // SAFETY: the options are live; errstr is writable for its length.
        let err = unsafe {
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options.0,
                ms,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(failure("admin options", err));
        }
        Ok(options)
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AdminOptions_new, destroyed once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

/// An event taken from a queue, destroyed on drop.
pub(super) struct Event(*mut rd::rd_kafka_event_t);

impl Event {
    /// The event's own error, if it carries one.
    pub(super) fn check(&self, operation: &'static str) -> Result<(), Error> {
        // SAFETY: the event is live until drop.
        let err = unsafe { rd::rd_kafka_event_error(self.0) };
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(failure(operation, err))
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: taken from a queue, destroyed once.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}
