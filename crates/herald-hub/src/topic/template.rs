//! RFC 6570 templates: parsed, validated, and turned into the anchored
//! regex that matches their possible expansions.

use super::{MAX_EXACT_PREFIX, MAX_VARIABLES_PER_EXPRESSION};

/// Why a selector is not a valid template (kept for tests and debugging).
pub(super) type ParseError = &'static str;

/// One piece of a parsed template.
#[derive(Debug, PartialEq)]
pub(super) enum Part<'a> {
    Literal(&'a str),
    Expression(Operator, Vec<VarSpec<'a>>),
}

/// The RFC 6570 operators (section 2.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Operator {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    PathParameter,
    Query,
    QueryContinuation,
}

/// How an operator expands (RFC 6570 appendix A).
struct Behaviour {
    first: &'static str,
    sep: &'static str,
    named: bool,
    /// Whether an empty named value still gets `=` (`?x=` rather than `;x`).
    empty_gets_equals: bool,
    allow_reserved: bool,
}

impl Operator {
    fn behaviour(self) -> Behaviour {
        let (first, sep, named, empty_gets_equals, allow_reserved) = match self {
            Operator::Simple => ("", ",", false, false, false),
            Operator::Reserved => ("", ",", false, false, true),
            Operator::Fragment => ("#", ",", false, false, true),
            Operator::Label => (".", ".", false, false, false),
            Operator::Path => ("/", "/", false, false, false),
            Operator::PathParameter => (";", ";", true, false, false),
            Operator::Query => ("?", "&", true, true, false),
            Operator::QueryContinuation => ("&", "&", true, true, false),
        };
        Behaviour {
            first,
            sep,
            named,
            empty_gets_equals,
            allow_reserved,
        }
    }
}

/// A variable of an expression, with its modifier.
#[derive(Debug, PartialEq)]
pub(super) struct VarSpec<'a> {
    pub(super) name: &'a str,
    pub(super) modifier: Modifier,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Modifier {
    None,
    Prefix(u16),
    Explode,
}

/// Splits a template into literals and expressions, validating the
/// expression syntax of RFC 6570 section 2.
pub(super) fn parse(template: &str) -> Result<Vec<Part<'_>>, ParseError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let Some(open) = rest.find(['{', '}']) else {
            parts.push(Part::Literal(rest));
            break;
        };
        if rest.as_bytes()[open] == b'}' {
            return Err("`}` without a matching `{`");
        }
        if open > 0 {
            parts.push(Part::Literal(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = match after.find(['{', '}']) {
            Some(close) if after.as_bytes()[close] == b'}' => close,
            Some(_) => return Err("`{` inside an expression"),
            None => return Err("`{` without a matching `}`"),
        };
        let (operator, vars) = parse_expression(&after[..close])?;
        parts.push(Part::Expression(operator, vars));
        rest = &after[close + 1..];
    }
    Ok(parts)
}

pub(super) fn parse_expression(body: &str) -> Result<(Operator, Vec<VarSpec<'_>>), ParseError> {
    let (operator, list) = match body.as_bytes().first() {
        None => return Err("empty expression"),
        Some(b'+') => (Operator::Reserved, &body[1..]),
        Some(b'#') => (Operator::Fragment, &body[1..]),
        Some(b'.') => (Operator::Label, &body[1..]),
        Some(b'/') => (Operator::Path, &body[1..]),
        Some(b';') => (Operator::PathParameter, &body[1..]),
        Some(b'?') => (Operator::Query, &body[1..]),
        Some(b'&') => (Operator::QueryContinuation, &body[1..]),
        Some(b'=' | b',' | b'!' | b'@' | b'|') => return Err("reserved operator"),
        Some(_) => (Operator::Simple, body),
    };
    let mut vars = Vec::new();
    for spec in list.split(',') {
        if vars.len() == MAX_VARIABLES_PER_EXPRESSION {
            return Err("too many variables in one expression");
        }
        vars.push(parse_varspec(spec)?);
    }
    Ok((operator, vars))
}

pub(super) fn parse_varspec(spec: &str) -> Result<VarSpec<'_>, ParseError> {
    let (name, modifier) = if let Some(name) = spec.strip_suffix('*') {
        (name, Modifier::Explode)
    } else if let Some((name, digits)) = spec.split_once(':') {
        (name, Modifier::Prefix(parse_max_length(digits)?))
    } else {
        (spec, Modifier::None)
    };
    if !is_varname(name) {
        return Err("invalid variable name");
    }
    Ok(VarSpec { name, modifier })
}

/// `max-length = %x31-39 0*3DIGIT`: 1 to 9999.
pub(super) fn parse_max_length(digits: &str) -> Result<u16, ParseError> {
    let bytes = digits.as_bytes();
    let well_formed =
        (1..=4).contains(&bytes.len()) && bytes[0] != b'0' && bytes.iter().all(u8::is_ascii_digit);
    if !well_formed {
        return Err("invalid prefix length");
    }
    digits.parse().map_err(|_| "invalid prefix length")
}

/// `varname = varchar *( ["."] varchar )`, `varchar = ALPHA / DIGIT / "_" /
/// pct-encoded`.
pub(super) fn is_varname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    let mut previous_was_dot = true; // no leading dot
    while i < bytes.len() {
        match bytes[i] {
            b'.' if !previous_was_dot => {
                previous_was_dot = true;
                i += 1;
                continue;
            }
            b'%' if bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => i += 1,
            _ => return false,
        }
        previous_was_dot = false;
    }
    !bytes.is_empty() && !previous_was_dot
}

/// RFC 3986 `unreserved`, as regex class items.
const UNRESERVED: &str = r"A-Za-z0-9\x2D\x2E\x5F\x7E";
/// RFC 3986 `reserved` (`gen-delims` and `sub-delims`), as regex class
/// items, hex-escaped so that none is read as class syntax.
const RESERVED: &str = r"\x3A\x2F\x3F\x23\x5B\x5D\x40\x21\x24\x26\x27\x28\x29\x2A\x2B\x2C\x3B\x3D";
/// A pct-encoded triplet.
const PCT_ENCODED: &str = "%[0-9A-Fa-f]{2}";

/// The anchored regex for a parsed template.
pub(super) fn to_regex(parts: &[Part<'_>]) -> String {
    let mut re = String::from(r"\A");
    for part in parts {
        match part {
            Part::Literal(text) => re.push_str(&regex::escape(text)),
            Part::Expression(operator, vars) => push_expression(&mut re, *operator, vars),
        }
    }
    re.push_str(r"\z");
    re
}

/// An expression expands to nothing (no variable defined), or to `first`
/// followed by the defined variables, in order, separated by `sep`. For
/// variables `v1..vn` that is `first (r1 (sep r2)? … (sep rn)? | r2 … | rn)`,
/// quadratic in `n`, which [`MAX_VARIABLES_PER_EXPRESSION`] bounds. When
/// all `ri` are the same regex (unnamed variables with the same modifier,
/// the common case) it is the linear `first r1 (sep r1){0,n-1}`.
fn push_expression(re: &mut String, operator: Operator, vars: &[VarSpec<'_>]) {
    let behaviour = operator.behaviour();
    let sep = regex::escape(behaviour.sep);
    let rendered: Vec<String> = vars.iter().map(|v| variable(&behaviour, v)).collect();
    re.push_str("(?:");
    re.push_str(&regex::escape(behaviour.first));
    re.push_str("(?:");
    if let Some(only) = rendered.first() {
        if rendered.iter().all(|r| r == only) {
            re.push_str(only);
            if rendered.len() > 1 {
                re.push_str(&format!("(?:{sep}{only}){{0,{}}}", rendered.len() - 1));
            }
            re.push_str("))?");
            return;
        }
    }
    for start in 0..rendered.len() {
        if start > 0 {
            re.push('|');
        }
        re.push_str(&rendered[start]);
        for later in &rendered[start + 1..] {
            re.push_str("(?:");
            re.push_str(&sep);
            re.push_str(later);
            re.push_str(")?");
        }
    }
    re.push_str("))?");
}

/// The regex for one defined variable of an expression.
fn variable(behaviour: &Behaviour, var: &VarSpec<'_>) -> String {
    let explode = var.modifier == Modifier::Explode;
    let sep = regex::escape(behaviour.sep);
    // An exploded associative array expands to `key=value` items, so `=`
    // may appear in items even where it is otherwise reserved.
    let item = item_pattern(behaviour.allow_reserved, explode, var.modifier);
    let list = format!("{item}(?:,{item})*");
    match (behaviour.named, explode) {
        (false, false) => format!("(?:{list})?"),
        (false, true) => format!("(?:{item}(?:{sep}{item})*)?"),
        (true, false) => {
            let name = regex::escape(var.name);
            if behaviour.empty_gets_equals {
                format!("{name}=(?:{list})?")
            } else {
                format!("{name}(?:={list})?")
            }
        }
        (true, true) => {
            // `name=v1&name=v2` for lists, `k1=v1&k2=v2` for associative
            // arrays: any key.
            let key = format!("(?:[{UNRESERVED}]|{PCT_ENCODED})+");
            let value = item_pattern(behaviour.allow_reserved, false, var.modifier);
            let pair = if behaviour.empty_gets_equals {
                format!("{key}=(?:{value})?")
            } else {
                format!("{key}(?:={value})?")
            };
            format!("{pair}(?:{sep}{pair})*")
        }
    }
}

/// One non-empty value: allowed characters or pct-encoded triplets.
fn item_pattern(allow_reserved: bool, allow_equals: bool, modifier: Modifier) -> String {
    let mut class = String::from(UNRESERVED);
    if allow_reserved {
        class.push_str(RESERVED);
    } else if allow_equals {
        class.push_str(r"\x3D");
    }
    let atom = format!("(?:[{class}]|{PCT_ENCODED})");
    match modifier {
        Modifier::Prefix(max) if max <= MAX_EXACT_PREFIX => format!("{atom}{{1,{max}}}"),
        _ => format!("{atom}+"),
    }
}
