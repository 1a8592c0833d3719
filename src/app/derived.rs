//! Results derived from one version of a history (its CSV, a page's rendered rows), and
//! rendered pages by the view they show, kept for the few most recently used. Entries
//! hold a history weakly: a history the memory budget let go is not kept alive here.
//! No I/O.

use std::sync::{Arc, Mutex, Weak};

use crate::data::history::TransactionList;

/// A small most-recently-used store keyed by equality (keys need no hash: a rendered
/// page is keyed by the whole view it shows).
pub struct Recent<K, V> {
    capacity: usize,
    entries: Mutex<Vec<(K, Arc<V>)>>,
}

impl<K: PartialEq, V> Recent<K, V> {
    /// The value kept for an equal key, else `make(key)`'s, kept.
    pub fn get_or_make<E>(
        &self,
        key: K,
        make: impl FnOnce(&K) -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if let Some(found) = self.find(|k| *k == key) {
            return Ok(found);
        }
        let value = make(&key)?;
        Ok(self.insert(key, value))
    }
}

impl<K, V> Recent<K, V> {
    pub fn new(capacity: usize) -> Self {
        Recent {
            capacity,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The value of the first key that `matches`; a hit becomes the most recently used.
    fn find(&self, matches: impl Fn(&K) -> bool) -> Option<Arc<V>> {
        let mut entries = self.lock();
        let position = entries.iter().position(|(k, _)| matches(k))?;
        let entry = entries.remove(position);
        let value = entry.1.clone();
        entries.push(entry);
        Some(value)
    }

    /// Keeps `value` under `key`, in place of the least recently used when full.
    fn insert(&self, key: K, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.remove(0);
        }
        entries.push((key, value.clone()));
        value
    }

    fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.lock().retain(|(k, _)| keep(k));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(K, Arc<V>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One version of a history, held weakly: equal only to the very same history (while
/// the weak reference lives, its allocation, hence its address, cannot be reused).
struct Version(Weak<TransactionList>);

impl Version {
    fn is(&self, history: &Arc<TransactionList>) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(history))
    }
}

/// Values derived from one version of a history (its CSV, a page's rendered rows).
pub struct Derived<K, V>(Recent<(Version, K), V>);

impl<K: PartialEq, V> Derived<K, V> {
    pub fn new(capacity: usize) -> Self {
        Derived(Recent::new(capacity))
    }

    /// The value for this history version and key, made once.
    pub fn get_or_make<E>(
        &self,
        history: &Arc<TransactionList>,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        match self.get(history, &key) {
            Some(found) => Ok(found),
            None => Ok(self.insert(history, key, make()?)),
        }
    }

    /// The value, if made for this history version and key; a hit becomes the most
    /// recently used.
    pub fn get(&self, history: &Arc<TransactionList>, key: &K) -> Option<Arc<V>> {
        self.0.find(|(version, k)| version.is(history) && k == key)
    }

    /// Keeps a value made for this history version and key.
    pub fn insert(&self, history: &Arc<TransactionList>, key: K, value: V) -> Arc<V> {
        // Entries whose history is gone are of no use.
        self.0.retain(|(version, _)| version.0.strong_count() > 0);
        self.0
            .insert((Version(Arc::downgrade(history)), key), value)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::license_api::wire::Transaction;

    #[test]
    fn a_value_is_made_once_per_history_version_and_key() {
        let store: Derived<u32, String> = Derived::new(2);
        let history = Arc::new(TransactionList::of(&[Transaction::default()]));
        let mut made = 0;
        for _ in 0..3 {
            let value = store
                .get_or_make(&history, 1, || {
                    made += 1;
                    Ok::<_, ()>("one".to_string())
                })
                .unwrap();
            assert_eq!(*value, "one");
        }
        assert_eq!(made, 1);
        let newer = Arc::new(TransactionList::of(&[Transaction::default()]));
        assert!(
            store.get(&newer, &1).is_none(),
            "another version is another entry"
        );
    }

    #[test]
    fn recent_values_are_made_once_per_equal_key_within_the_capacity() {
        let store: Recent<String, usize> = Recent::new(2);
        let made = std::cell::Cell::new(0);
        let get = |key: &str| {
            *store
                .get_or_make(key.to_string(), |k| {
                    made.set(made.get() + 1);
                    Ok::<_, ()>(k.len())
                })
                .unwrap()
        };
        assert_eq!((get("a"), get("bb"), get("a")), (1, 2, 1));
        get("ccc"); // "bb" is the least recently used: it goes
        get("a");
        get("bb");
        assert_eq!(made.get(), 4);
        assert_eq!(store.lock().len(), 2);
    }

    #[test]
    fn the_store_neither_grows_past_its_capacity_nor_keeps_histories_alive() {
        let store: Derived<u32, u32> = Derived::new(2);
        let history = Arc::new(TransactionList::of(&vec![Transaction::default(); 1000]));
        for key in 0..5 {
            store
                .get_or_make(&history, key, || Ok::<_, ()>(key))
                .unwrap();
        }
        assert_eq!(store.0.lock().len(), 2);
        let weak = Arc::downgrade(&history);
        drop(history);
        assert!(
            weak.upgrade().is_none(),
            "the store held the history only weakly"
        );
    }
}
