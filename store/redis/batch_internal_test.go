package redis

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/tasks"
)

// TestTaskHead checks that taskHead has every field of a task's json but
// Spec's and the three encodeTask leaves zero (Version and CreatedAt, which
// the task hash holds apart, and NextFire, which is not stored), and that
// taskHeadFromFields copies each into the task it returns. A field added to
// tasks.Task later fails it until RunTask reads that field too, rather than
// returning it zero.
func TestTaskHead(t *testing.T) {
	skip := map[string]bool{"version": true, "created_at": true, "next_fire": true}
	for _, name := range jsonFields(reflect.TypeFor[tasks.Spec]()) {
		skip[name] = true
	}
	var want []string
	for _, name := range jsonFields(reflect.TypeFor[tasks.Task]()) {
		if !skip[name] {
			want = append(want, name)
		}
	}
	got := jsonFields(reflect.TypeFor[taskHead]())
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("taskHead's json fields = %q, want %q (tasks.Task's but Spec's, version, created_at and next_fire)", got, want)
	}

	// Every field of Task outside Spec set, through encodeTask and back.
	var task tasks.Task
	v := reflect.ValueOf(&task).Elem()
	for i := range v.NumField() {
		if f := v.Type().Field(i); !f.Anonymous { // Spec is Task's one embedded field
			fill(t, f.Name, v.Field(i))
		}
	}
	js, err := encodeTask(task)
	if err != nil {
		t.Fatal(err)
	}
	head, err := taskHeadFromFields([]any{string(js), task.CreatedAt.Format(time.RFC3339Nano), strconv.FormatInt(task.Version, 10)})
	if err != nil {
		t.Fatal(err)
	}
	wantTask := task
	wantTask.NextFire = nil // not stored
	if !reflect.DeepEqual(head, wantTask) {
		t.Errorf("taskHeadFromFields = %+v\nwant %+v", head, wantTask)
	}
}

// jsonFields returns the names encoding/json gives the exported fields of
// struct type typ, those of an embedded struct without a name tag among
// them.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			out = append(out, jsonFields(f.Type)...)
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}

// fill sets v, the field name of a tasks.Task, to a value that is not
// zero, for the kinds of field Task has; a field of another kind fails
// the test, to be taught here.
func fill(t *testing.T, name string, v reflect.Value) {
	t.Helper()
	at := time.Date(2026, 11, 22, 8, 0, 0, 1000, time.UTC)
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(at))
	case v.Type() == reflect.TypeFor[*time.Time]():
		v.Set(reflect.ValueOf(&at))
	case v.Kind() == reflect.String:
		v.SetString("x_" + strings.ToLower(name))
	case v.Kind() == reflect.Int64:
		v.SetInt(7)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.ValueOf([]string{"x_" + strings.ToLower(name)}).Convert(v.Type()))
	default:
		t.Fatalf("fill: field %s of type %s: teach fill its kind", name, v.Type())
	}
}
