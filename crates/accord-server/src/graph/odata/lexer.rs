//! The `$filter` lexer: the text into tokens, with the byte offset of each for messages.

use super::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
    Ident(String),
    Str(String),
    Num(f64),
    DateTime(OffsetDateTime),
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Colon => "':'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Num(n) => format!("number {n}"),
            Tok::DateTime(_) => "a date-time".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Tok,
    /// Character position (1-based) in the filter text.
    pub(super) at: usize,
}

pub(super) fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' | ':' | '/' => {
                out.push(Token {
                    kind: match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        ':' => Tok::Colon,
                        _ => Tok::Slash,
                    },
                    at,
                });
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!("the string starting at position {at} is not closed with a quote."))
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Token { kind: Tok::Str(s), at });
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | ':' | '+' | '-'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(Token { kind: literal_word(&word, at)?, at });
            }
            c if c.is_alphabetic() || c == '_' || c == '$' || c == '@' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '$' | '@')) {
                    i += 1;
                }
                out.push(Token { kind: Tok::Ident(chars[start..i].iter().collect()), at });
            }
            other => return Err(format!("unexpected character '{other}' at position {at}.")),
        }
        if out.len() > 2000 {
            return Err("the expression has too many parts.".into());
        }
    }
    Ok(out)
}

/// A numeric-looking word: a number, or an unquoted date-time (`2026-12-01T09:00:00Z`).
pub(super) fn literal_word(word: &str, at: usize) -> Result<Tok, String> {
    if word.len() >= 10 && word.as_bytes()[4] == b'-' {
        return parse_datetime(word)
            .map(Tok::DateTime)
            .ok_or_else(|| format!("'{word}' at position {at} is not a valid date-time."));
    }
    let numeric = word.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    match word.parse::<f64>() {
        Ok(n) if numeric && n.is_finite() => Ok(Tok::Num(n)),
        _ => Err(format!("'{word}' at position {at} is not a valid number or date-time.")),
    }
}
