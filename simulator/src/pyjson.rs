//! Python `json.dumps` byte compatibility.
//!
//! The original simulator writes every value with `json.dumps(obj)` defaults: separators `", "`
//! and `": "`, `ensure_ascii=True` (every character outside printable ASCII as a lower-case
//! `\uXXXX` escape, characters above the BMP as a surrogate pair) and keys in insertion order
//! (our structs declare fields in the Python order). [`PyFormatter`] plugs those rules into
//! `serde_json`, so the consumers' parsers and this producer share the `model` types and the
//! bytes match the reference examples exactly (tested against spec §1.5).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// A `serde_json` formatter that writes what Python's `json.dumps` (default arguments) writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PyFormatter;

impl Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    /// serde_json has already escaped `"`, `\` and control characters; what is left and is not
    /// printable ASCII (DEL and everything non-ASCII) Python escapes as UTF-16 code units.
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return w.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        // Same short forms as Python (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`); other control
        // characters as `\u00xx`, lower-case like Python.
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(w, "\\u{byte:04x}"),
        };
        w.write_all(s)
    }
}

/// Serializes `value` the way Python's `json.dumps(value)` would.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    value.serialize(&mut Serializer::with_formatter(&mut out, PyFormatter))?;
    Ok(out)
}

/// [`to_vec`] as a `String` (the formatter only writes ASCII).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let bytes = to_vec(value)?;
    // ensure_ascii output is ASCII by construction, so this never fails.
    String::from_utf8(bytes).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uses_python_separators_and_keeps_key_order() {
        #[derive(Serialize)]
        struct T {
            b: u8,
            a: Vec<u8>,
            c: Option<u8>,
        }
        let s = to_string(&T {
            b: 1,
            a: vec![1, 2],
            c: None,
        })
        .expect("json");
        assert_eq!(s, r#"{"b": 1, "a": [1, 2], "c": null}"#);
        assert_eq!(to_string(&json!({})).expect("json"), "{}");
        assert_eq!(to_string(&json!([])).expect("json"), "[]");
    }

    #[test]
    fn escapes_like_ensure_ascii() {
        // Values checked against CPython 3.11 `json.dumps`.
        let cases = [
            ("plain", r#""plain""#),
            ("é", r#""\u00e9""#),
            ("日本", r#""\u65e5\u672c""#),
            ("😀", r#""\ud83d\ude00""#),
            ("a\"b\\c/d", r#""a\"b\\c/d""#),
            ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
            ("\u{1}\u{1f}\u{7f}", r#""\u0001\u001f\u007f""#),
        ];
        for (input, expected) in cases {
            assert_eq!(to_string(input).expect("json"), expected, "{input:?}");
        }
    }

    #[test]
    fn output_round_trips_through_serde_json() {
        let v = json!({"k": "x😀\u{7f}\"", "n": [1, -2, null, true]});
        let s = to_string(&v).expect("json");
        assert!(s.is_ascii());
        let back: serde_json::Value = serde_json::from_str(&s).expect("parse");
        assert_eq!(back, v);
    }
}
