//! A small JSON reader for the configuration. serde_json cost the wasm 25 KB (a fifth of it) for
//! what configuration needs: values, exact whole numbers, strings with escapes, and errors with a
//! line and column. The property tests check it against serde_json.

use std::fmt;

/// A parsed JSON value. Object fields keep their order; duplicates are refused while parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// What configuration needs to know about a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// A non-negative whole number, however written (`500`, `500.0`, `5e2`).
    Whole(u64),
    /// A whole number too large for u64.
    Huge,
    Negative,
    Fractional,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: &'static str,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

/// Nesting deeper than this is refused rather than risking the VM's stack.
const MAX_DEPTH: usize = 64;

pub fn parse(bytes: &[u8]) -> Result<Json, SyntaxError> {
    let mut parser = Parser { bytes, at: 0 };
    if std::str::from_utf8(bytes).is_err() {
        return Err(parser.error("not UTF-8"));
    }
    let value = parser.value(0)?;
    parser.skip_space();
    if parser.at < bytes.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, message: &'static str) -> SyntaxError {
        let seen = self.bytes.get(..self.at).unwrap_or(self.bytes);
        let line = 1 + seen.iter().filter(|b| **b == b'\n').count();
        let column = 1 + seen.iter().rev().take_while(|b| **b != b'\n').count();
        SyntaxError {
            message,
            line,
            column,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn consume(&mut self, byte: u8, message: &'static str) -> Result<(), SyntaxError> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(message))
        }
    }

    fn literal(&mut self, word: &[u8], value: Json) -> Result<Json, SyntaxError> {
        let end = self.at + word.len();
        if self.bytes.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_space();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Json::Number),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        self.at += 1;
        let mut fields: Vec<(String, Json)> = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a field name"));
            }
            let key = self.string()?;
            if fields.iter().any(|(existing, _)| *existing == key) {
                return Err(self.error("duplicate field"));
            }
            self.consume(b':', "expected ':'")?;
            let value = self.value(depth + 1)?;
            fields.push((key, value));
            self.skip_space();
            match self.next() {
                Some(b',') => continue,
                Some(b'}') => return Ok(Json::Object(fields)),
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.next() {
                Some(b',') => continue,
                Some(b']') => return Ok(Json::Array(items)),
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.next() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    let escaped = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape")),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(escaped.encode_utf8(&mut buf).as_bytes());
                }
                Some(byte) if byte < 0x20 => {
                    return Err(self.error("control character in a string"))
                }
                Some(byte) => out.push(byte),
            }
        }
        // The input was checked to be UTF-8, and escapes add whole characters.
        String::from_utf8(out).map_err(|_| self.error("not UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                    return Err(self.error("lone surrogate in a \\u escape"));
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone surrogate in a \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone surrogate in a \\u escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    /// JSON's number grammar, read exactly: whether the value is a whole number is decided on
    /// the decimal digits, without going through floating point.
    fn number(&mut self) -> Result<Number, SyntaxError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        let integer = self.slice(int_start);
        let mut fraction: &[u8] = &[];
        if self.peek() == Some(b'.') {
            self.at += 1;
            let start = self.at;
            self.digits();
            if self.at == start {
                return Err(self.error("invalid number"));
            }
            fraction = self.slice(start);
        }
        let mut exponent: i64 = 0;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            let sign: i64 = match self.peek() {
                Some(b'-') => {
                    self.at += 1;
                    -1
                }
                Some(b'+') => {
                    self.at += 1;
                    1
                }
                _ => 1,
            };
            let start = self.at;
            self.digits();
            if self.at == start {
                return Err(self.error("invalid number"));
            }
            let magnitude = self.slice(start).iter().fold(0i64, |n, d| {
                n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
            });
            exponent = sign * magnitude;
        }
        Ok(classify(negative, integer, fraction, exponent))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn slice(&self, start: usize) -> &'a [u8] {
        self.bytes.get(start..self.at).unwrap_or_default()
    }
}

/// The number `integer.fraction × 10^exponent` (digits as written) as configuration sees it.
fn classify(negative: bool, integer: &[u8], fraction: &[u8], exponent: i64) -> Number {
    let digits: Vec<u8> = integer.iter().chain(fraction).map(|d| d - b'0').collect();
    let significant = digits.iter().position(|d| *d != 0);
    let Some(first) = significant else {
        return Number::Whole(0);
    };
    let last = digits.iter().rposition(|d| *d != 0).unwrap_or(first);
    // Position of the decimal point within `digits`, moved by the exponent.
    let point = i64::try_from(integer.len())
        .unwrap_or(i64::MAX)
        .saturating_add(exponent);
    let last_position = i64::try_from(last).unwrap_or(i64::MAX);
    if last_position >= point {
        return if negative {
            Number::Negative
        } else {
            Number::Fractional
        };
    }
    if negative {
        return Number::Negative;
    }
    let first_position = i64::try_from(first).unwrap_or(i64::MAX);
    if point - first_position > 20 {
        return Number::Huge;
    }
    let mut value: u64 = 0;
    for position in first_position..point {
        let digit = usize::try_from(position)
            .ok()
            .and_then(|p| digits.get(p))
            .copied()
            .unwrap_or(0);
        let Some(next) = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
        else {
            return Number::Huge;
        };
        value = next;
    }
    Number::Whole(value)
}

#[cfg(test)]
mod tests;
