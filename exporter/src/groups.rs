//! The watched consumer groups, by identity.
//!
//! A group's name is interned once in a [`Groups`] registry and travels
//! through the exporter as a [`GroupId`]; everything kept per group (stage
//! counters, horizons, sweep findings, lag snapshots, status trackers, metric
//! handles) sits in a [`PerGroup`], which is indexed by that id and built
//! from the same registry. No part depends on another keeping the same order.

use std::collections::HashMap;
use std::ops::{Index, IndexMut};

/// A watched group: a small id handed out by one [`Groups`] registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(u16);

impl GroupId {
    fn slot(self) -> usize {
        usize::from(self.0)
    }
}

/// The watched groups' names, each once, and their ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    names: Vec<String>,
    ids: HashMap<String, GroupId>,
}

impl Groups {
    /// A registry of `names`; a repeated name is registered once, names
    /// beyond the 65,536th are left out (configuration bounds the `group`
    /// label far below that).
    pub fn new<G: Into<String>>(names: impl IntoIterator<Item = G>) -> Self {
        let mut groups = Groups::default();
        for name in names {
            groups.register(name.into());
        }
        groups
    }

    /// Registers `name` if it is new and there is room.
    fn register(&mut self, name: String) {
        let Ok(slot) = u16::try_from(self.names.len()) else {
            return;
        };
        if !self.ids.contains_key(&name) {
            self.names.push(name.clone());
            self.ids.insert(name, GroupId(slot));
        }
    }

    /// The id of a watched group.
    pub fn id(&self, name: &str) -> Option<GroupId> {
        self.ids.get(name).copied()
    }

    /// The name of a group of this registry.
    pub fn name(&self, id: GroupId) -> &str {
        &self.names[id.slot()]
    }

    /// Every group, with its name, in registration order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (GroupId, &str)> + '_ {
        self.names
            .iter()
            .enumerate()
            .map(|(slot, name)| (GroupId(slot as u16), name.as_str()))
    }

    /// The names, in registration order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.names.iter().map(String::as_str)
    }

    /// How many groups are watched.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// No group is watched.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl<G: Into<String>, const N: usize> From<[G; N]> for Groups {
    fn from(names: [G; N]) -> Self {
        Groups::new(names)
    }
}

impl From<&[String]> for Groups {
    fn from(names: &[String]) -> Self {
        Groups::new(names.iter().cloned())
    }
}

/// One `T` for every group of a registry, addressed by [`GroupId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerGroup<T> {
    values: Vec<T>,
}

impl<T> PerGroup<T> {
    /// A value for every group of `groups`, made from its id.
    pub fn from_fn(groups: &Groups, make: impl FnMut(GroupId) -> T) -> Self {
        PerGroup {
            values: groups.iter().map(|(id, _)| id).map(make).collect(),
        }
    }

    /// A value for every group of `groups`, or the first error making one.
    pub fn try_from_fn<E>(
        groups: &Groups,
        make: impl FnMut(GroupId) -> Result<T, E>,
    ) -> Result<Self, E> {
        Ok(PerGroup {
            values: groups
                .iter()
                .map(|(id, _)| id)
                .map(make)
                .collect::<Result<_, _>>()?,
        })
    }

    /// The same value for every group of `groups`.
    pub fn filled(groups: &Groups, value: T) -> Self
    where
        T: Clone,
    {
        PerGroup::from_fn(groups, |_| value.clone())
    }

    /// The value of `id`, if `id` belongs to the registry this was built for.
    pub fn get(&self, id: GroupId) -> Option<&T> {
        self.values.get(id.slot())
    }

    /// Every group's id and value.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (GroupId, &T)> + '_ {
        self.values
            .iter()
            .enumerate()
            .map(|(slot, value)| (GroupId(slot as u16), value))
    }

    /// Every group's id and value, mutable.
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (GroupId, &mut T)> + '_ {
        self.values
            .iter_mut()
            .enumerate()
            .map(|(slot, value)| (GroupId(slot as u16), value))
    }

    /// The values alone.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        self.values.iter()
    }

    /// A value per group made from this one's.
    pub fn map<U>(&self, mut f: impl FnMut(GroupId, &T) -> U) -> PerGroup<U> {
        PerGroup {
            values: self.iter().map(|(id, value)| f(id, value)).collect(),
        }
    }

    /// A value per group made from this one's, which `f` may change.
    pub fn map_mut<U>(&mut self, mut f: impl FnMut(GroupId, &mut T) -> U) -> PerGroup<U> {
        PerGroup {
            values: self.iter_mut().map(|(id, value)| f(id, value)).collect(),
        }
    }

    /// A value per group made from this one's, consuming it.
    pub fn into_map<U>(self, mut f: impl FnMut(GroupId, T) -> U) -> PerGroup<U> {
        PerGroup {
            values: self
                .values
                .into_iter()
                .enumerate()
                .map(|(slot, value)| f(GroupId(slot as u16), value))
                .collect(),
        }
    }

    /// The values in registration order (for display and tests).
    pub fn to_vec(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.values.clone()
    }

    /// How many groups.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// No group.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Bytes of the values' storage.
    pub fn capacity_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T>()
    }
}

impl<T> Default for PerGroup<T> {
    fn default() -> Self {
        PerGroup { values: Vec::new() }
    }
}

impl<T> Index<GroupId> for PerGroup<T> {
    type Output = T;

    fn index(&self, id: GroupId) -> &T {
        &self.values[id.slot()]
    }
}

impl<T> IndexMut<GroupId> for PerGroup<T> {
    fn index_mut(&mut self, id: GroupId) -> &mut T {
        &mut self.values[id.slot()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_registered_once_and_keeps_its_id() {
        let groups = Groups::new(["billing", "audit", "billing"]);
        assert_eq!(groups.len(), 2);
        let billing = groups.id("billing").expect("registered");
        let audit = groups.id("audit").expect("registered");
        assert_ne!(billing, audit);
        assert_eq!(groups.name(billing), "billing");
        assert_eq!(groups.name(audit), "audit");
        assert_eq!(groups.id("other"), None);
        assert_eq!(groups.names().collect::<Vec<_>>(), ["billing", "audit"]);
    }

    #[test]
    fn values_are_found_by_id_not_by_position() {
        let groups = Groups::new(["a", "b", "c"]);
        let mut counts = PerGroup::filled(&groups, 0u64);
        let b = groups.id("b").unwrap();
        counts[b] += 5;
        let names = counts.map(|id, count| format!("{}={count}", groups.name(id)));
        assert_eq!(
            names.values().cloned().collect::<Vec<_>>(),
            ["a=0", "b=5", "c=0"]
        );
        assert_eq!(counts.get(b), Some(&5));
    }

    #[test]
    fn an_id_of_a_larger_registry_is_not_found_in_a_smaller_one() {
        let large = Groups::new(["a", "b", "c"]);
        let small = Groups::new(["a"]);
        let values = PerGroup::filled(&small, 1u8);
        assert_eq!(values.get(large.id("c").unwrap()), None);
    }
}
