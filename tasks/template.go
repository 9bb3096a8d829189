package tasks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/vigilhq/vigil"
)

// slotRef matches a slot reference in a step argument: {{name}}, with
// optional spaces inside the braces.
var slotRef = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Render returns st's arguments with slot references replaced by the
// slots' values. A string that is exactly one reference ("{{count}}")
// becomes the slot's value with its JSON type; a reference inside a longer
// string is replaced by the value's text. Objects and arrays are rendered
// recursively; other values are kept. A reference to a slot that is not
// set is a vigil.Invalid error naming the argument.
func (st Step) Render(slots map[string]any) (map[string]any, error) {
	out, err := render("args", st.Args, slots)
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	return m, nil
}

func render(field string, v any, slots map[string]any) (any, error) {
	switch v := v.(type) {
	case string:
		if m := slotRef.FindStringSubmatch(v); m != nil && m[0] == v {
			val, ok := slots[m[1]]
			if !ok {
				return nil, vigil.FieldError(field, "refers to slot %q, which is not set", m[1])
			}
			return val, nil
		}
		var missing string
		s := slotRef.ReplaceAllStringFunc(v, func(ref string) string {
			name := slotRef.FindStringSubmatch(ref)[1]
			val, ok := slots[name]
			if !ok {
				missing = name
				return ref
			}
			if s, ok := val.(string); ok {
				return s
			}
			return fmt.Sprint(val)
		})
		if missing != "" {
			return nil, vigil.FieldError(field, "refers to slot %q, which is not set", missing)
		}
		return s, nil
	case map[string]any:
		if v == nil {
			return nil, nil
		}
		out := make(map[string]any, len(v))
		for _, k := range sortedKeys(v) {
			r, err := render(field+"."+k, v[k], slots)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := render(fmt.Sprintf("%s.%d", field, i), e, slots)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	default:
		return v, nil
	}
}

// textRef matches a slot reference in text, such as an instruction or a
// notification template: {{name}} as in step arguments, or {{.name}} as in
// Go templates, with optional spaces inside the braces.
var textRef = regexp.MustCompile(`\{\{\s*\.?([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Fill returns text with every reference ({{name}} or {{.name}}) to a key
// of vars replaced by its value. References to other names are left as
// they are, and their names returned in missing, in order of appearance.
func Fill(text string, vars map[string]string) (out string, missing []string) {
	out = textRef.ReplaceAllStringFunc(text, func(ref string) string {
		name := textRef.FindStringSubmatch(ref)[1]
		if v, ok := vars[name]; ok {
			return v
		}
		if !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		return ref
	})
	return out, missing
}

// FillSlots returns text, such as a task's instruction, with its slot
// references filled in from slots (their values as SlotText gives them).
// A reference to a slot that is not set becomes the slot's name in
// brackets ("[city]"): text for a user never shows a raw {{...}}.
func FillSlots(text string, slots map[string]any) string {
	return textRef.ReplaceAllStringFunc(text, func(ref string) string {
		name := textRef.FindStringSubmatch(ref)[1]
		if v, ok := slots[name]; ok {
			return SlotText(v)
		}
		return "[" + name + "]"
	})
}

// SlotText is a slot's value as text: a string as it is, a number
// without exponent, true or false, nothing for null, and anything else as
// JSON.
func SlotText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// checkTemplate checks that every slot args refers to is set.
func checkTemplate(field string, args map[string]any, slots map[string]any) *vigil.Error {
	if _, err := render(field, args, slots); err != nil {
		if ve, ok := err.(*vigil.Error); ok {
			return ve
		}
		return vigil.FieldError(field, "%v", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// conditionEnv is what a monitor condition sees. Both values are typed
// any, so the compiler accepts any operation on them and the types are
// checked when the condition runs.
type conditionEnv struct {
	Value any `expr:"value"`
	Prev  any `expr:"prev"`
}

// compileCondition compiles a monitor condition. Its error is the first
// line of expr's message (the rest draws a caret under the source).
func compileCondition(src string) (*vm.Program, error) {
	p, err := expr.Compile(src, expr.Env(conditionEnv{}), expr.AsBool())
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return nil, fmt.Errorf("%s", msg)
	}
	return p, nil
}

// Holds evaluates m's condition with value (the source's result now) and
// prev (its result at the previous check, nil at the first). A monitor
// without a condition holds (its judge decides). An error is a condition
// that compiles but cannot be evaluated on these values, such as
// arithmetic on nil at the first check; the caller treats it as not
// holding and tells the user.
func (m Monitor) Holds(value, prev any) (bool, error) {
	if strings.TrimSpace(m.Condition) == "" {
		return true, nil
	}
	p, err := compileCondition(m.Condition)
	if err != nil {
		return false, vigil.FieldError("monitor.condition", "does not compile: %v", err)
	}
	out, err := expr.Run(p, conditionEnv{Value: value, Prev: prev})
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return false, fmt.Errorf("tasks: monitor condition %q: %s", m.Condition, msg)
	}
	b, _ := out.(bool)
	return b, nil
}
