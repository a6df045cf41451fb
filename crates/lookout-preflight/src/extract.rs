//! From a file's tokens: its include and require statements (where, the expression as written, whether `@`
//! silences it and whether a test makes it optional), its constants (`define('NAME', expr)` and top-level
//! `const NAME = expr;`) and its `set_include_path` / `ini_set('include_path', …)` calls.
//!
//! **The guard rule**, kept simple so it is predictable: an include is *guarded* when
//! 1. it is inside the body of an `if`/`elseif` (braced, `:` … `endif`, or a single statement) whose condition
//!    calls `file_exists`, `is_file` or `is_readable` on the same expression (tokens compared, outer parentheses
//!    and case of names ignored), or calls `defined(…)` at all, or WordPress's `is_plugin_active(…)` /
//!    `is_plugin_active_for_network(…)` (a plugin's files exist only where it is installed: WordPress's own
//!    `wp-admin/press-this.php` includes `WP_PLUGIN_DIR . '/press-this/…'` only inside such a test); or
//! 2. it is an `include` (not a `require`, whose failure is fatal) inside an `if`/`elseif`/`while` condition — its
//!    result is tested, as PEAR's `if (!include_once 'Net/DNS.php') { return $this->_raiseError(…); }`; or
//! 3. one of those three functions was called on the same expression earlier in the same block (`{ … }` or the
//!    file's top level): `if (!is_file($f)) return; require $f;`, `$ok = file_exists(X); … require X;`, a ternary.

use crate::token::{Kind, Token, Tokens};

/// One token of an extracted expression, owned (the file's bytes are dropped after extraction). A string's value
/// is not kept beside its text but read from it when the expression is evaluated: every include's tokens are held
/// until the second pass, and the value beside each token doubled what they took (10 of 40 MB on a 10,000-file
/// tree, each page of it a page fault).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tok {
    pub kind: Kind,
    pub text: Bytes,
}

/// A token's bytes, inline up to 22 (`__DIR__`, `'/wp-load.php'`, a constant's name): most are, and a heap copy
/// of each was a third of preflight's allocations.
pub type Bytes = smallvec::SmallVec<[u8; 22]>;

impl Tok {
    pub fn is(&self, p: &str) -> bool {
        self.kind == Kind::Punct && &*self.text == p.as_bytes()
    }

    pub fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Ident && self.text.eq_ignore_ascii_case(word.as_bytes())
    }

    /// A string literal's constant value ([`Token::value`]).
    pub fn value(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        Token { kind: self.kind, text: &self.text, offset: 0 }.value()
    }

    /// A single-quoted string literal whose value is `value`.
    pub fn string(value: &[u8]) -> Tok {
        let mut text = Bytes::with_capacity(value.len() + 2);
        text.push(b'\'');
        for &b in value {
            if b == b'\\' || b == b'\'' {
                text.push(b'\\');
            }
            text.push(b);
        }
        text.push(b'\'');
        Tok { kind: Kind::Str, text }
    }
}

fn own(t: &Token<'_>) -> Tok {
    Tok { kind: t.kind, text: Bytes::from_slice(t.text) }
}

/// The include statement's keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    Include,
    IncludeOnce,
    Require,
    RequireOnce,
    /// A web-server configuration directive (`webconfig`): its name and arguments are the finding's expression.
    Directive,
}

impl Keyword {
    fn of(t: &Token<'_>) -> Option<Keyword> {
        // Asked of every name in every file: compared in place, without a lower-cased copy.
        if t.kind != Kind::Ident || !matches!(t.text.len(), 7 | 12) {
            return None;
        }
        [
            ("include", Keyword::Include),
            ("include_once", Keyword::IncludeOnce),
            ("require", Keyword::Require),
            ("require_once", Keyword::RequireOnce),
        ]
        .into_iter()
        .find_map(|(word, k)| t.is_word(word).then_some(k))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Include => "include",
            Keyword::IncludeOnce => "include_once",
            Keyword::Require => "require",
            Keyword::RequireOnce => "require_once",
            Keyword::Directive => "directive",
        }
    }

    /// A failed `require` is fatal whatever `@` says (E_COMPILE_ERROR); a failed `include` only warns.
    pub fn is_require(self) -> bool {
        matches!(self, Keyword::Require | Keyword::RequireOnce)
    }
}

/// What makes an include optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Tested with this function (`file_exists`, `is_file`, `is_readable`) on the same expression.
    Tested(&'static str),
    /// Inside `if (defined(…))`.
    Defined,
    /// Inside an `if` whose condition calls this function, which says an optional component is installed
    /// (`is_plugin_active`).
    Condition(&'static str),
    /// An `include` inside an `if`/`elseif`/`while` condition: the code tests whether it worked.
    ResultTested,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    pub keyword: Keyword,
    pub line: u32,
    pub column: u32,
    /// The expression's tokens, outer parentheses removed.
    pub expr: Vec<Tok>,
    /// The expression as written (tokens joined by single spaces where they were apart).
    pub written: String,
    pub silenced: bool,
    pub guard: Option<Guard>,
    /// The last `set_include_path` before it in the file (index into [`Facts::include_paths`]).
    pub include_path: Option<usize>,
}

/// A constant's definition in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Define {
    pub name: String,
    pub line: u32,
    pub expr: Vec<Tok>,
}

/// What preflight needs from one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub includes: Vec<Include>,
    pub defines: Vec<Define>,
    /// Expressions given to `set_include_path` or `ini_set('include_path', …)`, in file order.
    pub include_paths: Vec<Vec<Tok>>,
}

const TESTS: [&str; 3] = ["file_exists", "is_file", "is_readable"];
/// Calls in an `if` condition that make everything in its body optional: the component they ask about may not
/// be installed.
const CONDITIONS: [&str; 2] = ["is_plugin_active", "is_plugin_active_for_network"];

/// What a code token is to the passes below, computed once per token: each pass then compares one byte, not a
/// token's kind and text (the passes ran at ~100 instructions a token before). Brackets, `;` and `@` are their own
/// byte; the names that matter are codes from 0x80.
mod sym {
    pub const OTHER: u8 = 0;
    /// `->`, `?->` or `::`: what follows is a member, not a function or keyword.
    pub const MEMBER: u8 = 1;
    pub const IF: u8 = 0x80;
    pub const ELSEIF: u8 = 0x81;
    pub const WHILE: u8 = 0x82;
    pub const ENDIF: u8 = 0x83;
    /// `class`, `interface`, `trait`, `enum`.
    pub const CLASS: u8 = 0x84;
    pub const FUNCTION: u8 = 0x85;
    /// `include`, `include_once`, `require`, `require_once`.
    pub const INCLUDE: u8 = 0x86;
    /// `file_exists`, `is_file`, `is_readable`.
    pub const TEST: u8 = 0x87;
    pub const DEFINED: u8 = 0x88;
    /// `is_plugin_active`, `is_plugin_active_for_network`.
    pub const CONDITION: u8 = 0x89;
    pub const DEFINE: u8 = 0x8a;
    pub const CONST: u8 = 0x8b;
    pub const SET_INCLUDE_PATH: u8 = 0x8c;
    pub const INI_SET: u8 = 0x8d;
}

fn sym_of(t: &Token<'_>) -> u8 {
    match t.kind {
        Kind::Punct => match t.text {
            [b @ (b'(' | b')' | b'[' | b']' | b'{' | b'}' | b';' | b'@' | b':' | b',')] => *b,
            b"->" | b"?->" | b"::" => sym::MEMBER,
            _ => sym::OTHER,
        },
        Kind::Ident => {
            let w = |word: &str| t.text.eq_ignore_ascii_case(word.as_bytes());
            match t.text.len() {
                2 if w("if") => sym::IF,
                4 if w("enum") => sym::CLASS,
                5 if w("class") || w("trait") => sym::CLASS,
                5 if w("while") => sym::WHILE,
                5 if w("endif") => sym::ENDIF,
                5 if w("const") => sym::CONST,
                6 if w("elseif") => sym::ELSEIF,
                6 if w("define") => sym::DEFINE,
                7 if w("include") || w("require") => sym::INCLUDE,
                7 if w("is_file") => sym::TEST,
                7 if w("defined") => sym::DEFINED,
                7 if w("ini_set") => sym::INI_SET,
                8 if w("function") => sym::FUNCTION,
                9 if w("interface") => sym::CLASS,
                11 if w("file_exists") || w("is_readable") => sym::TEST,
                12 if w("include_once") || w("require_once") => sym::INCLUDE,
                16 if w("set_include_path") => sym::SET_INCLUDE_PATH,
                16 if w("is_plugin_active") => sym::CONDITION,
                28 if w("is_plugin_active_for_network") => sym::CONDITION,
                _ => sym::OTHER,
            }
        }
        _ => sym::OTHER,
    }
}

/// The working vectors of [`extract_with`], kept from one file to the next by each thread: allocated and grown
/// anew for every file, they were most of pass 1's calls to malloc, and two threads sharing one of glibc's arenas
/// then waited on its lock (1,800 context switches a 10,000-file run instead of 160).
#[derive(Default)]
pub struct Scratch {
    /// Always empty between files: its allocation is reused for each file's tokens (see [`NO_TOKEN`]).
    code: Vec<&'static Token<'static>>,
    syms: Vec<u8>,
    closes: Vec<usize>,
    blocks: Vec<usize>,
    stack: Vec<usize>,
}

/// What the empty `Scratch::code` is mapped to (no element ever is): `Vec<&Token<'static>>` and `Vec<&Token<'a>>`
/// are the same allocation, and collecting one into the other in place keeps it.
static NO_TOKEN: Token<'static> = Token { kind: Kind::Punct, text: &[], offset: 0 };

/// Extracts the facts of one file's tokens.
pub fn extract(tokens: &Tokens<'_>) -> Facts {
    extract_with(tokens, &mut Scratch::default())
}

/// [`extract`] with working vectors kept between files.
pub fn extract_with(tokens: &Tokens<'_>, scratch: &mut Scratch) -> Facts {
    let mut code: Vec<&Token<'_>> = std::mem::take(&mut scratch.code).into_iter().map(|t| t as &Token<'_>).collect();
    let facts = extract_into(tokens, scratch, &mut code);
    code.clear();
    scratch.code = code.into_iter().map(|_| &NO_TOKEN).collect();
    facts
}

fn extract_into<'t, 'a>(tokens: &'t Tokens<'a>, scratch: &mut Scratch, code: &mut Vec<&'t Token<'a>>) -> Facts {
    // Code only: inline HTML and open tags end statements like `;` (a `?>` token does too).
    code.clear();
    code.extend(tokens.iter().filter(|t| t.kind != Kind::InlineHtml));
    let code: &[&Token<'a>] = code;
    let syms = &mut scratch.syms;
    syms.clear();
    syms.extend(code.iter().map(|t| sym_of(t)));
    let syms: &[u8] = syms;
    let n = code.len();
    let mut facts = Facts::default();
    // Most files include nothing and define nothing: they are done after one look at each token.
    if !syms
        .iter()
        .any(|&s| matches!(s, sym::INCLUDE | sym::DEFINE | sym::CONST | sym::SET_INCLUDE_PATH | sym::INI_SET))
    {
        return facts;
    }
    facts.includes.reserve_exact(syms.iter().filter(|&&s| s == sym::INCLUDE).count());
    matching(syms, &mut scratch.closes, &mut scratch.stack);
    let closes: &[usize] = &scratch.closes;
    enclosing_blocks(syms, &mut scratch.blocks, &mut scratch.stack);
    let blocks: &[usize] = &scratch.blocks;
    let class_bodies = class_bodies(syms, closes);
    let spans = guard_spans(code, syms, closes);
    let conditions = condition_ranges(syms, closes);
    // Every test call: (position, block, function, argument key).
    let mut tests: Vec<(usize, usize, &'static str, &[&Token<'_>])> = Vec::new();
    for i in 0..n {
        if syms[i] < 0x80 {
            continue;
        }
        let t = code[i];
        let prev = i.checked_sub(1).map(|p| code[p]);
        let member = i.checked_sub(1).is_some_and(|p| matches!(syms[p], sym::MEMBER | sym::FUNCTION));
        if member {
            continue;
        }
        let next_open = syms.get(i + 1) == Some(&b'(');
        if let Some(keyword) = Keyword::of(t) {
            if code.get(i + 1).is_some_and(|t| t.is(":") || t.is("=>")) {
                continue;
            }
            let end = expression_end(code, closes, i + 1);
            let expr = outer_parens_off(&code[i + 1..end]);
            let guard = spans
                .iter()
                .filter(|s| s.start < i && i <= s.end)
                .find_map(|s| {
                    if s.defined {
                        Some(Guard::Defined)
                    } else if let Some(f) = s.condition {
                        Some(Guard::Condition(f))
                    } else {
                        s.tests.iter().find(|(_, k)| same_expression(k, expr)).map(|(f, _)| Guard::Tested(f))
                    }
                })
                .or_else(|| {
                    let tested = !keyword.is_require() && conditions.iter().any(|&(open, close)| open < i && i < close);
                    tested.then_some(Guard::ResultTested)
                })
                .or_else(|| {
                    tests
                        .iter()
                        .find(|(_, b, _, k)| *b == blocks[i] && same_expression(k, expr))
                        .map(|(_, _, f, _)| Guard::Tested(f))
                });
            let (line, column) = tokens.position(t);
            facts.includes.push(Include {
                keyword,
                line,
                column,
                written: written(&code[i + 1..end]),
                expr: expr.iter().map(|t| own(t)).collect(),
                silenced: prev.is_some_and(|p| p.is("@")),
                guard,
                include_path: facts.include_paths.len().checked_sub(1),
            });
        } else if next_open
            && syms[i] == sym::TEST
            && let Some(f) = TESTS.iter().find(|f| t.is_word(f))
        {
            let args = arguments(code, closes, i + 1);
            if let Some(first) = args.first() {
                tests.push((i, blocks[i], f, outer_parens_off(first)));
            }
        } else if next_open && syms[i] == sym::DEFINE {
            let args = arguments(code, closes, i + 1);
            if let [name, value, ..] = args.as_slice()
                && let [name] = *name
                && let Some(v) = name.value()
            {
                let name = String::from_utf8_lossy(&v).trim_start_matches('\\').to_string();
                facts.defines.push(Define { name, line: tokens.position(t).0, expr: strip_parens(value) });
            }
        } else if syms[i] == sym::CONST && !class_bodies.contains(&blocks[i]) {
            facts.defines.extend(constants(tokens, code, closes, i + 1));
        } else if next_open && syms[i] == sym::SET_INCLUDE_PATH {
            if let Some(first) = arguments(code, closes, i + 1).first() {
                facts.include_paths.push(strip_parens(first));
            }
        } else if next_open && syms[i] == sym::INI_SET {
            let args = arguments(code, closes, i + 1);
            if let [name, value, ..] = args.as_slice()
                && let [name] = *name
                && name.value().as_deref() == Some(&b"include_path"[..])
            {
                facts.include_paths.push(strip_parens(value));
            }
        }
    }
    facts
}

/// For each opening `(`, `[` or `{`, the index of its closing partner (`n` when unclosed); other tokens map to
/// themselves.
fn matching(syms: &[u8], closes: &mut Vec<usize>, stack: &mut Vec<usize>) {
    let n = syms.len();
    closes.clear();
    closes.extend(0..n);
    stack.clear();
    for (i, s) in syms.iter().enumerate() {
        match s {
            b'(' | b'[' | b'{' => {
                closes[i] = n;
                stack.push(i);
            }
            b')' | b']' | b'}' => {
                if let Some(open) = stack.pop() {
                    closes[open] = i;
                }
            }
            _ => {}
        }
    }
}

/// For each token, the index of the innermost `{` around it (`usize::MAX` at the top level).
fn enclosing_blocks(syms: &[u8], blocks: &mut Vec<usize>, stack: &mut Vec<usize>) {
    stack.clear();
    blocks.clear();
    blocks.extend(syms.iter().enumerate().map(|(i, s)| {
        let here = stack.last().copied().unwrap_or(usize::MAX);
        if *s == b'{' {
            stack.push(i);
        } else if *s == b'}' {
            stack.pop();
            return stack.last().copied().unwrap_or(usize::MAX);
        }
        here
    }));
}

/// The `{` indices that open a class, interface, trait or enum body (their `const`s are class constants).
fn class_bodies(syms: &[u8], closes: &[usize]) -> Vec<usize> {
    let mut bodies = Vec::new();
    for (i, s) in syms.iter().enumerate() {
        // `?->class` is a member too (the `->` and `::` checks before also missed it).
        let after_member = i.checked_sub(1).is_some_and(|p| syms[p] == sym::MEMBER);
        if *s != sym::CLASS || after_member {
            continue;
        }
        let mut j = i + 1;
        while j < syms.len() && syms[j] != b'{' && syms[j] != b';' {
            j = if syms[j] == b'(' { closes[j] + 1 } else { j + 1 };
        }
        if j < syms.len() && syms[j] == b'{' {
            bodies.push(j);
        }
    }
    bodies
}

/// A region of tokens governed by an `if` condition that tests files or `defined`.
struct Span<'t, 'a> {
    start: usize,
    end: usize,
    tests: Vec<(&'static str, &'t [&'t Token<'a>])>,
    defined: bool,
    condition: Option<&'static str>,
}

fn guard_spans<'t, 'a>(code: &'t [&'t Token<'a>], syms: &[u8], closes: &[usize]) -> Vec<Span<'t, 'a>> {
    let mut spans = Vec::new();
    for i in 0..syms.len() {
        if !matches!(syms[i], sym::IF | sym::ELSEIF) || syms.get(i + 1) != Some(&b'(') {
            continue;
        }
        let close = closes[i + 1];
        let cond = &code[(i + 2).min(close)..close.min(code.len())];
        let mut tests = Vec::new();
        let mut defined = false;
        let mut condition = None;
        for (j, c) in cond.iter().enumerate() {
            let k = i + 2 + j;
            if syms.get(k + 1) != Some(&b'(') {
                continue;
            }
            match syms[k] {
                sym::TEST => {
                    let f = TESTS.iter().find(|f| c.is_word(f));
                    if let (Some(f), Some(first)) = (f, arguments(code, closes, k + 1).first()) {
                        tests.push((*f, outer_parens_off(first)));
                    }
                }
                sym::DEFINED => defined = true,
                sym::CONDITION => condition = condition.or(CONDITIONS.iter().find(|f| c.is_word(f)).copied()),
                _ => {}
            }
        }
        if tests.is_empty() && !defined && condition.is_none() {
            continue;
        }
        let body = close + 1;
        let end = match code.get(body) {
            Some(b) if b.is("{") => closes[body],
            Some(b) if b.is(":") => alternative_end(syms, closes, body + 1),
            Some(_) => statement_end(code, closes, body),
            None => continue,
        };
        spans.push(Span { start: close, end, tests, defined, condition });
    }
    spans
}

/// The `(`…`)` of every `if`, `elseif` and `while` condition.
fn condition_ranges(syms: &[u8], closes: &[usize]) -> Vec<(usize, usize)> {
    (0..syms.len())
        .filter(|&i| matches!(syms[i], sym::IF | sym::ELSEIF | sym::WHILE) && syms.get(i + 1) == Some(&b'('))
        .map(|i| (i + 1, closes[i + 1]))
        .collect()
}

/// The `endif` closing an `if (…):` body that starts at `from` (nested alternative ifs counted).
fn alternative_end(syms: &[u8], closes: &[usize], from: usize) -> usize {
    let mut depth = 0usize;
    let mut j = from;
    while j < syms.len() {
        match syms[j] {
            sym::IF if syms.get(j + 1) == Some(&b'(') && syms.get(closes[j + 1] + 1) == Some(&b':') => depth += 1,
            sym::ENDIF if depth == 0 => return j,
            sym::ENDIF => depth -= 1,
            _ => {}
        }
        j += 1;
    }
    syms.len()
}

/// The `;` or `?>` ending the statement that starts at `from`.
fn statement_end(code: &[&Token<'_>], closes: &[usize], from: usize) -> usize {
    let mut j = from;
    while j < code.len() {
        let t = code[j];
        if t.is(";") || t.kind == Kind::CloseTag || t.kind == Kind::OpenTag {
            return j;
        }
        if t.is("(") || t.is("[") || t.is("{") {
            if t.is("{") && j == from {
                return closes[j];
            }
            j = closes[j];
        }
        j += 1;
    }
    code.len()
}

/// Where an include's expression ends: `;`, `?>`, or a `,` `)` `]` `}` that closes what encloses the statement.
fn expression_end(code: &[&Token<'_>], closes: &[usize], from: usize) -> usize {
    let mut j = from;
    while j < code.len() {
        let t = code[j];
        if t.is(";")
            || t.is(",")
            || t.is(")")
            || t.is("]")
            || t.is("}")
            || t.kind == Kind::CloseTag
            || t.kind == Kind::OpenTag
        {
            return j;
        }
        if t.is("(") || t.is("[") || t.is("{") {
            j = closes[j];
        }
        j += 1;
    }
    code.len()
}

/// The arguments of the call whose `(` is at `open`: each a slice of tokens, split at top-level commas.
fn arguments<'t, 'a>(code: &'t [&'t Token<'a>], closes: &[usize], open: usize) -> Vec<&'t [&'t Token<'a>]> {
    let close = closes.get(open).copied().unwrap_or(code.len()).min(code.len());
    let mut args = Vec::new();
    let mut start = open + 1;
    let mut j = open + 1;
    while j < close {
        let t = code[j];
        if t.is(",") {
            args.push(&code[start..j]);
            start = j + 1;
        } else if t.is("(") || t.is("[") || t.is("{") {
            j = closes[j].min(close);
        }
        j += 1;
    }
    if start < close {
        args.push(&code[start..close]);
    }
    args
}

/// `NAME = expr, NAME2 = expr;` after a top-level `const`.
fn constants(tokens: &Tokens<'_>, code: &[&Token<'_>], closes: &[usize], from: usize) -> Vec<Define> {
    let mut out = Vec::new();
    let mut j = from;
    while let (Some(name), Some(eq)) = (code.get(j), code.get(j + 1)) {
        if name.kind != Kind::Ident || !eq.is("=") {
            break;
        }
        let start = j + 2;
        let end = expression_end(code, closes, start);
        out.push(Define {
            name: String::from_utf8_lossy(name.text).into_owned(),
            line: tokens.position(name).0,
            expr: strip_parens(&code[start..end]),
        });
        if !code.get(end).is_some_and(|t| t.is(",")) {
            break;
        }
        j = end + 1;
    }
    out
}

/// The tokens, owned, without parentheses around the whole.
fn strip_parens(tokens: &[&Token<'_>]) -> Vec<Tok> {
    outer_parens_off(tokens).iter().map(|t| own(t)).collect()
}

/// The tokens without parentheses around the whole, borrowed.
fn outer_parens_off<'t, 'a>(tokens: &'t [&'t Token<'a>]) -> &'t [&'t Token<'a>] {
    let mut t = tokens;
    while t.len() >= 2 && t[0].is("(") && t[t.len() - 1].is(")") && closes_at_end(t) {
        t = &t[1..t.len() - 1];
    }
    t
}

/// Whether the `(` at the start of `t` is closed by its last token.
fn closes_at_end(t: &[&Token<'_>]) -> bool {
    let mut depth = 0i32;
    for (i, tok) in t.iter().enumerate() {
        if tok.is("(") {
            depth += 1;
        } else if tok.is(")") {
            depth -= 1;
            if depth == 0 {
                return i == t.len() - 1;
            }
        }
    }
    false
}

/// Whether two expressions are the same tokens, names compared without case (PHP's functions and magic constants
/// ignore it). Compared in place: a lower-cased copy of every include's expression was a tenth of extraction.
fn same_expression(a: &[&Token<'_>], b: &[&Token<'_>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.kind == y.kind
                && if x.kind == Kind::Ident { x.text.eq_ignore_ascii_case(y.text) } else { x.text == y.text }
        })
}

/// The expression as written: its tokens, a space where the source had one.
fn written(tokens: &[&Token<'_>]) -> String {
    let mut out = Vec::with_capacity(tokens.iter().map(|t| t.text.len() + 1).sum());
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            let prev = tokens[i - 1];
            if prev.offset + prev.text.len() != t.offset {
                out.push(b' ');
            }
        }
        out.extend_from_slice(t.text);
    }
    // Checked once as a whole, not token by token.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests;
