// Package shell splits command lines into words the way a POSIX shell does,
// without running a shell: quoting and escaping only, no expansion.
package shell

import (
	"errors"
	"strings"
)

// Errors Split returns.
var (
	ErrUnbalancedQuote   = errors.New("unbalanced quote")
	ErrTrailingBackslash = errors.New("trailing backslash")
)

// Split splits a command line by POSIX shell rules: single quotes (everything
// literal up to the next '), double quotes (where \\ \" \$ \` escape the
// second character and a backslash-newline disappears; any other backslash
// stays), backslash escapes outside quotes (a backslash-newline disappears),
// and words separated by spaces, tabs and newlines. A '#' at the start of a
// word starts a comment up to the end of the line, as in the shell and in the
// Rust shlex crate the original Horust uses. There is no globbing, no
// variable or tilde expansion and no operators: "a|b" is one word.
//
// A command of only blanks (or only a comment) gives no words and no error.
// An unclosed quote or a backslash at the very end is an error.
func Split(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		in    bool // inside a word
	)
	end := func() {
		if in {
			words = append(words, word.String())
			word.Reset()
			in = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			end()
		case c == '#' && !in:
			// A comment runs to the end of the line.
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '\\':
			in = true
			if i+1 >= len(s) {
				return nil, ErrTrailingBackslash
			}
			i++
			if s[i] != '\n' {
				word.WriteByte(s[i])
			}
		case c == '\'':
			in = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, ErrUnbalancedQuote
			}
			word.WriteString(s[i+1 : i+1+j])
			i += 1 + j
		case c == '"':
			in = true
			n, err := doubleQuoted(s[i+1:], &word)
			if err != nil {
				return nil, err
			}
			i += n
		default:
			in = true
			word.WriteByte(c)
		}
	}
	end()
	return words, nil
}

// doubleQuoted copies the inside of a double-quoted string (s starts just
// after the opening quote) into w and returns how many bytes it used,
// including the closing quote.
func doubleQuoted(s string, w *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return 0, ErrUnbalancedQuote
			}
			i++
			switch n := s[i]; n {
			case '\\', '"', '$', '`':
				w.WriteByte(n)
			case '\n':
			default:
				w.WriteByte('\\')
				w.WriteByte(n)
			}
		default:
			w.WriteByte(c)
		}
	}
	return 0, ErrUnbalancedQuote
}
