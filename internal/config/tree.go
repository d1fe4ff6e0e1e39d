package config

import (
	"errors"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// kind is the TOML type of a value.
type kind int

// The TOML types.
const (
	kindString kind = iota
	kindInteger
	kindFloat
	kindBool
	kindDateTime
	kindArray
	kindTable
)

// String names the type the way a user reads it in a message.
func (k kind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindInteger:
		return "an integer"
	case kindFloat:
		return "a float"
	case kindBool:
		return "a boolean"
	case kindDateTime:
		return "a date/time"
	case kindArray:
		return "an array"
	default:
		return "a table"
	}
}

// value is one TOML value with the position where it is written.
type value struct {
	kind      kind
	line, col int
	text      string   // strings: the decoded string; other scalars: as written
	items     []*value // arrays
	table     *table   // tables
}

// table is a TOML table whose keys keep their order of definition.
type table struct {
	keys   []string
	fields map[string]*value
}

func newTable() *table { return &table{fields: map[string]*value{}} }

// get returns the value of key, or nil.
func (t *table) get(key string) *value { return t.fields[key] }

// set defines key. A key that is already defined keeps its first value:
// go-toml has rejected such a document already (parseTOML checks it first).
func (t *table) set(key string, v *value) {
	if _, ok := t.fields[key]; ok {
		return
	}
	t.keys = append(t.keys, key)
	t.fields[key] = v
}

// sub returns the table at key, creating it (at line, col) when missing. It
// returns nil when key holds something that is not a table.
func (t *table) sub(key string, line, col int) *table {
	v := t.fields[key]
	if v == nil {
		v = &value{kind: kindTable, line: line, col: col, table: newTable()}
		t.set(key, v)
	}
	switch {
	case v.kind == kindTable:
		return v.table
	case v.kind == kindArray && len(v.items) > 0 && v.items[len(v.items)-1].kind == kindTable:
		// A [[array]] of tables: keys go to its last element.
		return v.items[len(v.items)-1].table
	}
	return nil
}

// syntaxError is a TOML document that go-toml rejects, located where it
// reports the error.
type syntaxError struct {
	Line, Col int
	Msg       string
}

// parseTOML parses a TOML document into a tree of positioned values. The
// document is first decoded by go-toml proper, which enforces all of TOML
// (syntax, duplicate keys, redefined tables) and gives the line and column
// of the first error; the tree itself comes from go-toml's unstable parser,
// which keeps positions. On a syntax error the tree holds what came before
// the error, so that the caller can still find, for example, the name.
func parseTOML(data []byte) (*table, *syntaxError) {
	var serr *syntaxError
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		serr = &syntaxError{Msg: strings.TrimPrefix(err.Error(), "toml: ")}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			serr.Line, serr.Col = de.Position()
		}
	}
	root := newTable()
	current := root
	var p unstable.Parser
	p.Reset(data)
	pos := func(n *unstable.Node, fallbackLine, fallbackCol int) (int, int) {
		if n == nil || n.Raw.Length == 0 {
			return fallbackLine, fallbackCol
		}
		s := p.Shape(n.Raw)
		return s.Start.Line, s.Start.Column
	}
	// walk descends from t along the keys of it but the last, creating
	// tables; it returns the table to define the last key in (nil when a
	// key on the way is not a table) and that key with its position.
	walk := func(t *table, it unstable.Iterator) (*table, string, int, int) {
		var last string
		var line, col int
		first := true
		for it.Next() {
			if !first {
				t = t.sub(last, line, col)
				if t == nil {
					return nil, "", 0, 0
				}
			}
			first = false
			last = string(it.Node().Data)
			line, col = pos(it.Node(), 1, 1)
		}
		return t, last, line, col
	}
	var convert func(n *unstable.Node, line, col int) *value
	convert = func(n *unstable.Node, line, col int) *value {
		line, col = pos(n, line, col)
		v := &value{line: line, col: col, text: string(n.Data)}
		switch n.Kind {
		case unstable.String:
			v.kind = kindString
		case unstable.Integer:
			v.kind = kindInteger
		case unstable.Float:
			v.kind = kindFloat
		case unstable.Bool:
			v.kind = kindBool
		case unstable.Array:
			v.kind = kindArray
			for it := n.Children(); it.Next(); {
				if c := it.Node(); c.Kind != unstable.Comment {
					v.items = append(v.items, convert(c, line, col))
				}
			}
		case unstable.InlineTable:
			v.kind = kindTable
			v.table = newTable()
			for it := n.Children(); it.Next(); {
				kv := it.Node()
				if kv.Kind != unstable.KeyValue {
					continue
				}
				t, key, kl, kc := walk(v.table, kv.Key())
				if t != nil {
					t.set(key, convert(kv.Value(), kl, kc))
				}
			}
		default:
			v.kind = kindDateTime
		}
		return v
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			t, key, line, col := walk(root, e.Key())
			if t != nil {
				t = t.sub(key, line, col)
			}
			if t == nil {
				// Redefining a value as a table: go-toml has reported it.
				t = newTable()
			}
			current = t
		case unstable.ArrayTable:
			t, key, line, col := walk(root, e.Key())
			next := newTable()
			if t != nil {
				v := t.get(key)
				if v == nil {
					v = &value{kind: kindArray, line: line, col: col}
					t.set(key, v)
				}
				if v.kind == kindArray {
					v.items = append(v.items, &value{kind: kindTable, line: line, col: col, table: next})
				}
			}
			current = next
		case unstable.KeyValue:
			t, key, line, col := walk(current, e.Key())
			if t != nil {
				t.set(key, convert(e.Value(), line, col))
			}
		}
	}
	if serr == nil && p.Error() != nil {
		// Not expected: go-toml accepted what its own parser rejects.
		serr = &syntaxError{Msg: p.Error().Error()}
	}
	return root, serr
}
