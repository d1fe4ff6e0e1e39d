package config

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// templateError is an undefined variable found by expand, with its position
// in the input (1-based line and column in bytes).
type templateError struct {
	Line, Col int
	Name      string
	Braced    bool // written as ${NAME}
}

// Error describes the undefined variable and how to fix it.
func (e templateError) Error() string {
	if e.Name == "" {
		return "empty variable name in ${}; write $$ for a literal $"
	}
	ref := "$" + e.Name
	if e.Braced {
		ref = "${" + e.Name + "}"
	}
	return fmt.Sprintf("undefined variable %s: set %s in horust's environment, give a default with ${%s:-default}, or write $$ for a literal $",
		ref, e.Name, e.Name)
}

// expand templates text with variables from lookup, by the rules of the
// shellexpand crate (version 3) that the original Horust applies to the whole
// raw text of every service file:
//
//   - $NAME and ${NAME} are replaced by the value of NAME. For $NAME the name
//     is the longest run of letters, digits and '_' (digits may start it, so
//     $1 looks up "1"); ${NAME} ends at the first '}'.
//   - ${NAME:-default} gives the text between ":-" and the first '}' when
//     NAME is unset (not expanded further); a set but empty NAME gives "".
//   - $$ is a literal $, and a $ followed by anything else stays as it is; a
//     "${" with no '}' after it stays as it is.
//   - A '~' that is the very first character, followed by '/' or the end,
//     becomes $HOME (when HOME is set).
//   - Replacement values are not expanded again.
//
// An undefined variable (and ${}) is an error; expand collects every one
// of them, leaves the reference as written, and goes on.
func expand(text string, lookup func(string) (string, bool)) (string, []templateError) {
	var (
		out  strings.Builder
		errs []templateError
	)
	out.Grow(len(text))
	line, lineStart, i := 1, 0, 0
	if strings.HasPrefix(text, "~") && (len(text) == 1 || text[1] == '/') {
		if home, ok := lookup("HOME"); ok {
			out.WriteString(home)
			i = 1
		}
	}
	for i < len(text) {
		c := text[i]
		if c == '\n' {
			line++
			lineStart = i + 1
		}
		if c != '$' || i+1 == len(text) {
			out.WriteByte(c)
			i++
			continue
		}
		next := text[i+1]
		switch {
		case next == '$':
			out.WriteByte('$')
			i += 2
		case next == '{':
			end := strings.IndexByte(text[i+2:], '}')
			if end < 0 {
				out.WriteString("${")
				i += 2
				continue
			}
			body := text[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(body, ":-")
			if v, ok := lookup(name); ok && name != "" {
				out.WriteString(v)
			} else if hasDef {
				out.WriteString(def)
			} else {
				errs = append(errs, templateError{Line: line, Col: i - lineStart + 1, Name: name, Braced: true})
				out.WriteString(text[i : i+3+end])
			}
			i += 3 + end
		default:
			n := nameLen(text[i+1:])
			if n == 0 {
				out.WriteByte('$')
				i++
				continue
			}
			name := text[i+1 : i+1+n]
			if v, ok := lookup(name); ok {
				out.WriteString(v)
			} else {
				errs = append(errs, templateError{Line: line, Col: i - lineStart + 1, Name: name})
				out.WriteString("$" + name)
			}
			i += 1 + n
		}
	}
	return out.String(), errs
}

// nameLen returns the length in bytes of the variable name at the start of
// s: the longest run of Unicode letters, numbers and '_'.
func nameLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Other_Alphabetic, r) {
			break
		}
		n += size
	}
	return n
}
