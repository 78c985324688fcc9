package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

var (
	yamlLine   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yaml.v3 numbers the lines of its parser's errors from 0 (its scanner's
// from 1) and leaves "line 0" out: these are the parser's.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// Problems of yaml.v3's reader, which gives no position at all.
var readerProblems = []string{"control characters are not allowed", "invalid leading UTF-8 octet",
	"incomplete UTF-8 octet sequence", "invalid trailing UTF-8 octet", "invalid length of a UTF-8 sequence",
	"invalid Unicode character", "incomplete UTF-16", "unexpected low surrogate area", "expected low surrogate area", "input error"}

const syntaxHint = "; check the indentation (spaces, not tabs) and unclosed quotes or brackets on this line and the next few"

// syntaxError turns yaml.v3's "yaml: line 3: mapping values are not allowed"
// into file:3: ..., correcting the line yaml.v3 gives and finding one where
// it gives none.
func (d *decoder) syntaxError(err error, data []byte) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			line++
		}
		return &Error{File: d.file, Line: line, Msg: "YAML syntax: " + m[2] + syntaxHint}
	}
	if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		return &Error{File: d.file, Line: aliasLine(data, m[1]),
			Msg: fmt.Sprintf("YAML alias *%s has no anchor &%s before it: define the anchor first, or write the value out", m[1], m[1])}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	for _, p := range readerProblems {
		if strings.HasPrefix(msg, p) {
			return &Error{File: d.file, Line: badCharLine(data), Msg: "YAML: " + msg + ": remove the character, or save the file as UTF-8 text"}
		}
	}
	// Any other scanner or parser problem without a line is on line 1.
	return &Error{File: d.file, Line: 1, Msg: "YAML syntax: " + msg + syntaxHint}
}

// badCharLine is the line of the first byte yaml.v3's reader refuses, or 0.
func badCharLine(data []byte) int {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return 0 // UTF-16: lines are not counted in bytes
	}
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || !yamlPrintable(r) {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 0
}

// yamlPrintable is the YAML 1.2 c-printable set, which yaml.v3's reader enforces.
func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
		r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
}

// aliasLine is the line of the first *name in data, or 0.
func aliasLine(data []byte, name string) int {
	re, err := regexp.Compile(`\*` + regexp.QuoteMeta(name) + `(?:[\s,\]}]|$)`)
	if err != nil {
		return 0
	}
	loc := re.FindIndex(data)
	if loc == nil {
		return 0
	}
	return 1 + bytes.Count(data[:loc[0]], []byte("\n"))
}
