//! Byte-level mutations of a file, the fuzzers' shared vocabulary: flip, set, truncate,
//! insert, remove, append, and (with [`byte_edit_with_u64`]) a little-endian `u64` written
//! over 8 bytes (lengths and offsets at the edges).

use proptest::prelude::*;
use proptest::sample::Index;

/// A byte-level mutation of a file.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    /// Flips bit `b` of the byte at an index.
    Flip(Index, u8),
    /// Sets the byte at an index.
    Set(Index, u8),
    /// Keeps the bytes before an index.
    Truncate(Index),
    /// Inserts bytes at an index.
    Insert(Index, Vec<u8>),
    /// Removes up to 64 bytes from an index.
    Remove(Index, Index),
    /// Appends bytes.
    Append(Vec<u8>),
    /// Overwrites 8 bytes with a little-endian `u64`: at the start (a header length) one
    /// time in four, else anywhere.
    U64(Index, u64),
}

/// `u64`s at the edges of lengths and counts, and any.
fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..64u64,
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1u64 << 32),
        Just(100_000_001),
        any::<u64>(),
    ]
}

/// Every edit but [`ByteEdit::U64`].
pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        4 => (any::<Index>(), 0..8u8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        2 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| ByteEdit::Insert(i, v)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| ByteEdit::Remove(a, b)),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(ByteEdit::Append),
    ]
}

/// Every edit, [`ByteEdit::U64`] included (one time in eleven).
pub fn byte_edit_with_u64() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        10 => byte_edit(),
        1 => (any::<Index>(), interesting_u64()).prop_map(|(i, v)| ByteEdit::U64(i, v)),
    ]
}

/// Applies `edit` to `bytes` (an edit that needs more bytes than there are does nothing).
pub fn apply(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    let n = bytes.len();
    match edit {
        ByteEdit::Flip(i, b) if n > 0 => bytes[i.index(n)] ^= 1 << b,
        ByteEdit::Set(i, b) if n > 0 => bytes[i.index(n)] = *b,
        ByteEdit::Truncate(i) => bytes.truncate(i.index(n + 1)),
        ByteEdit::Insert(i, v) => {
            let at = i.index(n + 1);
            bytes.splice(at..at, v.iter().copied());
        }
        ByteEdit::Remove(a, b) if n > 0 => {
            let a = a.index(n);
            let b = a + b.index(n - a).min(64);
            bytes.drain(a..b);
        }
        ByteEdit::Append(v) => bytes.extend_from_slice(v),
        ByteEdit::U64(i, v) if n >= 8 => {
            let at = if i.index(4) == 0 { i.index(n - 7) } else { 0 };
            bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;

    /// Each edit changes the length as it names, on random inputs.
    #[test]
    fn edits_change_the_length_as_named() {
        let mut runner = crate::runner(1);
        let strategy = (
            prop::collection::vec(any::<u8>(), 0..40),
            byte_edit_with_u64(),
        );
        for _ in 0..2000 {
            let (bytes, edit) = strategy.new_tree(&mut runner).unwrap().current();
            let mut b = bytes.clone();
            apply(&mut b, &edit);
            let (n, m) = (bytes.len(), b.len());
            match &edit {
                ByteEdit::Flip(..) if n > 0 => {
                    assert_eq!(m, n);
                    assert_eq!(b.iter().zip(&bytes).filter(|(x, y)| x != y).count(), 1);
                }
                ByteEdit::Set(..) | ByteEdit::Flip(..) | ByteEdit::U64(..) => assert_eq!(m, n),
                ByteEdit::Truncate(_) => assert!(m <= n),
                ByteEdit::Insert(_, v) => assert_eq!(m, n + v.len()),
                ByteEdit::Remove(..) => assert!(m <= n && n - m <= 64),
                ByteEdit::Append(v) => assert_eq!(&b[n..], v.as_slice()),
            }
        }
    }
}
