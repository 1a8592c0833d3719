//! A transaction history kept as JSON text and decoded a page at a time.
//!
//! Finding where each entry lies costs a quarter of decoding them all, and the text takes
//! less memory than the decoded entries, so a view decodes only the rows it shows: a CGI
//! request reads a 10,000-entry cache file in about 1.5 ms instead of 5 ms, and a memory
//! budget holds more histories. Pure: no I/O.

use std::ops::Range;

use serde_json::value::RawValue;

use crate::data::license_api::wire::Transaction;
use crate::data::stamp::FileStamp;

/// The entries of a history: JSON text, and where in it each entry lies. A list may hold
/// a window of a longer history (one page, read through an [`EntryIndex`]): it then knows
/// the whole history's length but holds only entries `first..first + held`.
#[derive(Debug, Default, PartialEq)]
pub struct TransactionList {
    text: Box<str>,
    entries: Vec<Range<usize>>,
    /// The history's index of `entries[0]`.
    first: usize,
    /// Entries in the whole history.
    total: usize,
}

/// The most entries a list holds: the API sends at most 10,000; this bounds a misbehaving
/// server or cache file, whichever way the list is read.
pub const MAX_TRANSACTIONS: usize = 200_000;

/// What an unreadable entry shows of its text (the rest is cut).
const UNREADABLE_SHOWN_CHARS: usize = 200;

impl TransactionList {
    /// The entries of `text`, found by `locate`: the entries' JSON values, borrowed from
    /// the text it is given. `None` when `locate` finds no list.
    pub fn locate(
        text: String,
        locate: impl for<'a> FnOnce(&'a str) -> Option<Vec<&'a RawValue>>,
    ) -> Option<TransactionList> {
        let entries = positions(&text, &locate(&text)?);
        Some(TransactionList::window(text, entries, 0, 0))
    }

    /// Entries `first..` of a history of `total` (at least as many as are held).
    pub fn window(
        text: String,
        entries: Vec<Range<usize>>,
        first: usize,
        total: usize,
    ) -> TransactionList {
        let total = total.max(first + entries.len());
        TransactionList {
            text: text.into_boxed_str(),
            entries,
            first,
            total,
        }
    }

    /// The entries of a JSON array.
    pub fn from_array(text: String) -> Result<TransactionList, serde_json::Error> {
        let raw: Vec<&RawValue> = serde_json::from_str(&text)?;
        let entries = positions(&text, &raw);
        Ok(TransactionList::window(text, entries, 0, 0))
    }

    /// A list of these transactions, for tests.
    #[cfg(test)]
    pub fn of(transactions: &[Transaction]) -> TransactionList {
        let text = serde_json::to_string(transactions).expect("transactions serialize");
        TransactionList::from_array(text).expect("serialized transactions are an array")
    }

    /// Entries in the whole history.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// True when every entry of the history is held (not a window of it).
    #[cfg(test)]
    pub fn is_whole(&self) -> bool {
        self.first == 0 && self.entries.len() == self.total
    }

    /// One entry's JSON text as the server sent it, if held.
    pub fn raw(&self, index: usize) -> Option<&str> {
        let held = index.checked_sub(self.first)?;
        self.entries.get(held).map(|r| &self.text[r.clone()])
    }

    /// The held entries in `range`, decoded.
    pub fn decode(&self, range: Range<usize>) -> Vec<Transaction> {
        let end = range.end.min(self.first + self.entries.len());
        let start = range.start.max(self.first).min(end);
        (start..end).filter_map(|i| self.get(i)).collect()
    }

    /// Every held entry, decoded one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Transaction> + '_ {
        (self.first..self.first + self.entries.len()).filter_map(|i| self.get(i))
    }

    /// One entry decoded; an entry that is not a transaction (a number field holding
    /// words, a field named twice, not an object) is shown with its text, never dropped.
    pub fn get(&self, index: usize) -> Option<Transaction> {
        let raw = self.raw(index)?;
        Some(serde_json::from_str(raw).unwrap_or_else(|_| Transaction::unreadable(raw)))
    }

    /// The held entries' JSON text as an array (for a cache file).
    pub fn to_json_array(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 2);
        out.push('[');
        for (i, range) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&self.text[range.clone()]);
        }
        out.push(']');
        out
    }

    /// Where each held entry lies in the text.
    pub fn entries(&self) -> &[Range<usize>] {
        &self.entries
    }

    /// What the list costs in memory: its text and the entries' positions.
    pub fn memory_bytes(&self) -> usize {
        self.text.len() + self.entries.capacity() * std::mem::size_of::<Range<usize>>()
    }
}

/// Where each of `entries`, borrowed from `text`, lies in it.
fn positions(text: &str, entries: &[&RawValue]) -> Vec<Range<usize>> {
    let base = text.as_ptr() as usize;
    entries
        .iter()
        .take(MAX_TRANSACTIONS)
        .map(|entry| {
            let start = entry.get().as_ptr() as usize - base;
            start..start + entry.get().len()
        })
        .collect()
}

/// Where each entry of a transaction cache file lies, kept beside the file so that a
/// process answering one request (CGI) reads only the shown page's bytes instead of
/// reading and scanning megabytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryIndex {
    pub file: FileStamp,
    /// The cache file's `timestamp`.
    pub timestamp: i64,
    pub entries: Vec<Range<usize>>,
}

/// The index format: this tag, the file's length, modification time and inode, the
/// timestamp, the entry count, then each entry's start and end; little-endian.
const INDEX_TAG: &[u8; 8] = b"TUINDEX1";
const INDEX_HEADER: usize = 8 + 8 + 8 + 8 + 8 + 4;

impl EntryIndex {
    /// The index's bytes; `None` for a file too large for its 32-bit offsets.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let count = u32::try_from(self.entries.len()).ok()?;
        let mut out = Vec::with_capacity(INDEX_HEADER + self.entries.len() * 8);
        out.extend_from_slice(INDEX_TAG);
        out.extend_from_slice(&self.file.len.to_le_bytes());
        out.extend_from_slice(&self.file.modified_ns.to_le_bytes());
        out.extend_from_slice(&self.file.inode.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        for range in &self.entries {
            out.extend_from_slice(&u32::try_from(range.start).ok()?.to_le_bytes());
            out.extend_from_slice(&u32::try_from(range.end).ok()?.to_le_bytes());
        }
        Some(out)
    }

    /// Reads an index; `None` unless it is whole and its entries are in order, apart and
    /// inside the file it names (pure; fuzzed).
    pub fn decode(bytes: &[u8]) -> Option<EntryIndex> {
        let header = bytes.get(..INDEX_HEADER)?;
        if &header[..8] != INDEX_TAG {
            return None;
        }
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
        let file = FileStamp {
            len: word(8),
            modified_ns: word(16) as i64,
            inode: word(24),
        };
        let timestamp = word(32) as i64;
        let count = u32::from_le_bytes(header[40..44].try_into().unwrap()) as usize;
        let body = &bytes[INDEX_HEADER..];
        if body.len() != count.checked_mul(8)? {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        let mut previous_end = 0;
        for pair in body.chunks_exact(8) {
            let start = u32::from_le_bytes(pair[..4].try_into().unwrap()) as usize;
            let end = u32::from_le_bytes(pair[4..].try_into().unwrap()) as usize;
            if start < previous_end || end <= start || end as u64 > file.len {
                return None;
            }
            previous_end = end;
            entries.push(start..end);
        }
        Some(EntryIndex {
            file,
            timestamp,
            entries,
        })
    }
}

impl Transaction {
    /// A row for an entry that does not decode: neutral type, its text as description.
    pub fn unreadable(raw: &str) -> Transaction {
        let mut shown: String = raw.chars().take(UNREADABLE_SHOWN_CHARS).collect();
        if shown.len() < raw.len() {
            shown.push('…');
        }
        Transaction {
            transaction_type: "unreadable".into(),
            description: format!("Unreadable entry: {shown}"),
            ..Transaction::default()
        }
    }
}

/// Transactions per page, as in the PHP page.
pub const PER_PAGE: usize = 300;

/// The page arithmetic: which page is shown and which rows it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub page: usize,
    pub pages: usize,
    /// 0-based range of rows on the page.
    pub start: usize,
    pub end: usize,
}

/// Clamps the requested page to `1..=pages` and finds its rows.
pub fn paginate(total: usize, requested: usize, per_page: usize) -> Pagination {
    let pages = total.div_ceil(per_page).max(1);
    let page = requested.clamp(1, pages);
    let start = (page - 1) * per_page;
    Pagination {
        page,
        pages,
        start: start.min(total),
        end: (start + per_page).min(total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_and_decoded_on_demand() {
        let list = TransactionList::from_array(
            r#"[{"id": 1, "amount": "-0.5"}, {"id": "2", "description": "b"}, {"id": 3}]"#
                .to_string(),
        )
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list.raw(1), Some(r#"{"id": "2", "description": "b"}"#));
        let page = list.decode(1..10);
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].id, "2");
        assert_eq!(page[0].description, "b");
        assert_eq!(list.get(0).unwrap().amount, -0.5);
        assert!(list.decode(5..9).is_empty());
        assert_eq!(list.iter().count(), 3);
    }

    #[test]
    fn a_list_found_inside_a_larger_document_keeps_its_positions() {
        #[derive(serde::Deserialize)]
        struct File<'a> {
            #[serde(borrow)]
            transactions: Vec<&'a RawValue>,
        }
        let text = r#"{"timestamp": 5, "transactions": [{"id": 7}, {"id": 8}]}"#.to_string();
        let list = TransactionList::locate(text, |t| {
            serde_json::from_str::<File>(t).ok().map(|f| f.transactions)
        })
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.get(1).unwrap().id, "8");
        assert_eq!(list.to_json_array(), r#"[{"id": 7},{"id": 8}]"#);
    }

    #[test]
    fn an_entry_that_is_not_a_transaction_is_shown_with_its_text() {
        let list = TransactionList::from_array(
            r#"[{"amount": "lots"}, 5, {"id": 1, "id": 2}, {"id": 4}]"#.into(),
        )
        .unwrap();
        let rows: Vec<_> = list.iter().collect();
        assert_eq!(rows.len(), 4, "nothing dropped");
        assert_eq!(rows[0].transaction_type, "unreadable");
        assert_eq!(
            rows[0].description,
            r#"Unreadable entry: {"amount": "lots"}"#
        );
        assert_eq!(rows[1].description, "Unreadable entry: 5");
        assert_eq!(rows[2].transaction_type, "unreadable");
        assert_eq!(rows[3].id, "4");
    }

    #[test]
    fn a_long_unreadable_entry_is_cut() {
        let raw = format!(r#"{{"amount": "{}"}}"#, "x".repeat(1000));
        let row = Transaction::unreadable(&raw);
        assert!(row.description.chars().count() < 250);
        assert!(row.description.ends_with('…'));
    }

    #[test]
    fn a_window_knows_the_whole_length_but_holds_only_its_entries() {
        let text = r#"{"id":"41"},{"id":"42"}"#.to_string();
        let list = TransactionList::window(text, vec![0..11, 12..23], 40, 100);
        assert_eq!(list.len(), 100);
        assert!(!list.is_whole());
        assert_eq!(list.raw(41), Some(r#"{"id":"42"}"#));
        assert_eq!(list.raw(0), None);
        let ids: Vec<String> = list.decode(0..100).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, ["41", "42"]);
        assert_eq!(list.iter().count(), 2);
    }

    fn index() -> EntryIndex {
        EntryIndex {
            file: FileStamp {
                len: 100,
                modified_ns: 1_763_629_200_123_456_789,
                inode: 77,
            },
            timestamp: 1_763_629_200,
            entries: vec![10..20, 21..40, 41..99],
        }
    }

    #[test]
    fn an_index_reads_back_as_written() {
        let bytes = index().encode().unwrap();
        assert_eq!(bytes.len(), INDEX_HEADER + 3 * 8);
        assert_eq!(EntryIndex::decode(&bytes), Some(index()));
        let empty = EntryIndex {
            entries: Vec::new(),
            ..index()
        };
        assert_eq!(EntryIndex::decode(&empty.encode().unwrap()), Some(empty));
    }

    #[test]
    fn a_damaged_index_is_refused() {
        let good = index().encode().unwrap();
        let mut cases = vec![
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            b"TUINDEX2".iter().chain(&good[8..]).copied().collect(),
            Vec::new(),
        ];
        for entries in [
            vec![10..20, 15..40],  // overlapping
            vec![10..20, 30..30],  // empty
            vec![10..20, 41..101], // past the file's end
        ] {
            let mut bytes = EntryIndex { entries, ..index() }.encode().unwrap();
            cases.push(std::mem::take(&mut bytes));
        }
        for (i, bytes) in cases.iter().enumerate() {
            assert_eq!(EntryIndex::decode(bytes), None, "case {i}");
        }
    }

    #[test]
    fn not_an_array_is_an_error() {
        assert!(TransactionList::from_array("{}".into()).is_err());
        assert!(TransactionList::from_array("[1,".into()).is_err());
    }

    #[test]
    fn a_list_holds_at_most_max_transactions_and_keeps_the_first() {
        let text = format!("[{}]", vec![r#"{"id":1}"#; MAX_TRANSACTIONS + 2].join(","));
        let list = TransactionList::from_array(text).unwrap();
        assert_eq!(list.len(), MAX_TRANSACTIONS);
        assert!(list.to_json_array().ends_with(r#"{"id":1}]"#));
        assert!(list.memory_bytes() >= MAX_TRANSACTIONS * 8);
    }
}
