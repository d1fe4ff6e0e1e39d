package shell

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"words separated by blanks", " a\tb \n c ", []string{"a", "b", "c"}},
		{"empty input gives no words", "", nil},
		{"blanks only give no words", " \t\n", nil},
		{"single quotes keep everything", `sh -c 'echo $HOME "x" \n'`, []string{"sh", "-c", `echo $HOME "x" \n`}},
		{"double quotes keep blanks", `echo "a  b"`, []string{"echo", "a  b"}},
		{"double quote escapes", `"\\ \" \$ \` + "`" + `"`, []string{"\\ \" $ `"}},
		{"other backslashes stay inside double quotes", `"\n\a"`, []string{`\n\a`}},
		{"backslash newline inside double quotes disappears", "\"a\\\nb\"", []string{"ab"}},
		{"backslash escapes outside quotes", `a\ b \'c\"`, []string{"a b", `'c"`}},
		{"backslash newline outside quotes joins", "foo\\\nbar", []string{"foobar"}},
		{"quotes join with adjacent text", `foo"bar"'baz'`, []string{"foobarbaz"}},
		{"empty quotes make an empty word", `a '' ""`, []string{"a", "", ""}},
		{"no variable expansion", `echo $HOME ~ *`, []string{"echo", "$HOME", "~", "*"}},
		{"operators are plain text", `a|b;c&&d`, []string{"a|b;c&&d"}},
		{"comment at word start", "foo #bar\nbaz", []string{"foo", "baz"}},
		{"comment to the end", "foo #bar", []string{"foo"}},
		{"hash inside a word is text", "foo#bar", []string{"foo#bar"}},
		{"comment only gives no words", "# nothing", nil},
		{"original's documented form", `/usr/bin/env bash -c 'echo hello world'`, []string{"/usr/bin/env", "bash", "-c", "echo hello world"}},
		{"utf-8 passes through", "écho 'ünï cödé'", []string{"écho", "ünï cödé"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.in)
			if err != nil {
				t.Fatalf("Split(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Split(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"unclosed single quote", `echo 'a`, ErrUnbalancedQuote},
		{"unclosed double quote", `echo "a`, ErrUnbalancedQuote},
		{"escaped quote does not close", `"a\"`, ErrUnbalancedQuote},
		{"backslash cannot escape inside single quotes", `'baz\''`, ErrUnbalancedQuote},
		{"backslash at the end inside double quotes", `"\`, ErrUnbalancedQuote},
		{"trailing backslash", `echo \`, ErrTrailingBackslash},
		{"quote inside a word after a hash", `foo"#bar`, ErrUnbalancedQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Split(%q) = %q, %v; want error %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// quote is the inverse used by the fuzz test: single-quote every word.
func quote(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"", "a b", `sh -c 'echo a b'`, `"a\"b"`, `a\ b`, "x #c\ny", `'`, `"\`, "\\\n",
		`/bin/sh -c 'i=0; while :; do i=$((i+1)); sleep 1; done'`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		// Quoting the words and splitting again gives the same words.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quote(w)
		}
		again, err := Split(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("re-split of %q: %v", quoted, err)
		}
		if !slices.Equal(words, again) {
			t.Fatalf("Split(%q) = %q, but re-split gives %q", s, words, again)
		}
	})
}
