//! Record headers read as bytes, whole.
//!
//! Kafka header names are bytes on the wire. rdkafka's `Headers::iter` reads them as `&str` and
//! panics on a name that is not UTF-8 (an `unwrap()` in its `BorrowedHeaders::try_get`): one
//! crafted record would kill every worker that reads its partition. librdkafka's public header
//! API hands names out as C strings, which also cuts a name at its first NUL byte.
//!
//! So the names are read here through librdkafka's C API, with their full length: librdkafka
//! (`rdkafka_header.c`, `rd_kafka_header_add`) allocates each header as one block, the name and
//! its NUL terminator followed by the value, and keeps the name's length beside it. The length
//! is read from that block only when the block agrees with everything else known of the header
//! (see `name_len`); should a future librdkafka lay it out differently, the name falls back to
//! the C string's length, and the test that produces a name holding a NUL byte fails.

use std::ffi::{CStr, c_char, c_void};

use rdkafka::bindings as rdsys;
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaRespErr;

/// One header: its name and its value (`None` for a header without value).
pub type RecordHeader<'m> = (&'m [u8], Option<&'m [u8]>);

/// Replaces `out` with the headers of `msg`, in order, names and values as bytes.
#[expect(
    unsafe_code,
    reason = "librdkafka's header API (C); audited below, see the module doc"
)]
pub fn read<'m>(msg: &'m BorrowedMessage<'_>, out: &mut Vec<RecordHeader<'m>>) {
    out.clear();
    let mut hdrs: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is the live message `msg` borrows; rd_kafka_message_headers only parses
    // the message's header bytes into a list the message owns (freed with the message, which
    // outlives 'm) and stores its address in `hdrs`.
    let err = unsafe { rdsys::rd_kafka_message_headers(msg.ptr(), &raw mut hdrs) };
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
        return; // RD_KAFKA_RESP_ERR__NOENT: the record has no headers.
    }
    // SAFETY: `hdrs` is the message's header list, valid for 'm.
    let count = unsafe { rdsys::rd_kafka_header_cnt(hdrs) };
    for idx in 0..count {
        let mut name: *const c_char = std::ptr::null();
        let mut value: *const c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `idx < count`; the out-pointers are valid locals. On success `name` points to
        // the header's NUL-terminated name and `value` to `size` bytes (or is null), both inside
        // the header's block, owned by the list.
        let err = unsafe {
            rdsys::rd_kafka_header_get_all(hdrs, idx, &raw mut name, &raw mut value, &raw mut size)
        };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: as above; `name_len` reads only inside the header's block (see there).
        let name_len = unsafe { name_len(name, value, size) };
        // SAFETY: `name_len` bytes from `name` are the header's name, inside its block.
        let name = unsafe { std::slice::from_raw_parts(name.cast::<u8>(), name_len) };
        let value = (!value.is_null())
            // SAFETY: librdkafka hands out `size` readable bytes at a non-null `value`.
            .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
        out.push((name, value));
    }
}

/// The length of a header name that may hold NUL bytes.
///
/// librdkafka (`rd_kafka_header_add`) allocates a header as one block
/// `{ ser_size, value_size, name_size, value_ptr, name[name_size + 1], value[value_size + 1] }`.
/// The four words before the name are read and trusted only when they agree with everything
/// else known of the header: the value pointer and size `rd_kafka_header_get_all` returned, the
/// value placed right after the name's terminator, the serialized size librdkafka computed from
/// the two lengths, and the terminator at `name_size`. Otherwise the C string's length is used.
///
/// # Safety
/// `name`, `value` and `value_size` are what `rd_kafka_header_get_all` returned for one header.
#[expect(
    unsafe_code,
    reason = "reads librdkafka's header block; the layout is checked before it is trusted"
)]
unsafe fn name_len(name: *const c_char, value: *const c_void, value_size: usize) -> usize {
    const WORD: usize = std::mem::size_of::<usize>();
    // SAFETY: librdkafka's names are NUL-terminated.
    let c_len = unsafe { CStr::from_ptr(name) }.to_bytes().len();
    let name = name.cast::<u8>();
    // SAFETY: the name sits four words into its block (three size_t and a pointer before it,
    // `rdkafka_header.h` of the librdkafka that rdkafka-sys vendors, pinned in Cargo.lock), so
    // these words belong to the block; read unaligned to assume nothing more.
    let [ser_size, stored_value_size, name_size, value_ptr] = unsafe {
        let field =
            |words_back: usize| name.sub(words_back * WORD).cast::<usize>().read_unaligned();
        [field(4), field(3), field(2), field(1)]
    };
    let value_follows_name = if value.is_null() {
        value_ptr == 0 && stored_value_size == 0 && value_size == 0
    } else {
        value_ptr == value as usize
            && stored_value_size == value_size
            && (value as usize).wrapping_sub(name as usize) == name_size.wrapping_add(1)
    };
    let plausible = value_follows_name
        && name_size >= c_len
        && name_size - c_len <= MAX_NAME_BYTES
        && ser_size
            == name_size
                .wrapping_add(value_size)
                .wrapping_add(varint_len(name_size))
                .wrapping_add(varint_len(value_size));
    // SAFETY: the block was recognised: the name and its terminator are `name_size + 1` bytes.
    if plausible && unsafe { *name.add(name_size) } == 0 {
        name_size
    } else {
        c_len
    }
}

/// A bound on how far past the first NUL a name is trusted to go (a Kafka record is at most
/// `message.max.bytes`, 1 MiB by default; anything larger means the layout was not understood).
const MAX_NAME_BYTES: usize = 64 * 1024 * 1024;

/// Bytes of librdkafka's zig-zag varint encoding of `n` (`rd_uvarint_enc_i64`).
fn varint_len(n: usize) -> usize {
    let mut zigzag = (n as u64) << 1;
    let mut len = 1;
    while zigzag >= 0x80 {
        zigzag >>= 7;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::varint_len;

    #[test]
    fn varint_lengths_follow_zigzag_encoding() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(63), 1);
        assert_eq!(varint_len(64), 2);
        assert_eq!(varint_len(8191), 2);
        assert_eq!(varint_len(8192), 3);
    }
}
