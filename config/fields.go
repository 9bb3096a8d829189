package config

import (
	"reflect"
	"strings"
)

// The Config struct is its own schema: the functions here walk it by
// reflection so that environment variables, unknown-key checks, redaction
// and logging all follow the yaml tags, and a new field needs no code beyond
// its declaration.

// key is one field of a section, as the YAML file spells it.
type key struct {
	name  string // the yaml key
	field reflect.StructField
}

// keys returns the fields of the struct type t that YAML sees, in
// declaration order, named as yaml.v3 names them: the tag's name, or the
// field name in lower case when the tag gives none.
func keys(t reflect.Type) []key {
	var ks []key
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		ks = append(ks, key{name, f})
	}
	return ks
}

// isSection reports whether values of type t are sections, holding keys of
// their own, rather than leaves holding a value.
func isSection(t reflect.Type) bool { return t.Kind() == reflect.Struct }

// eachLeaf calls fn for every leaf under the section v, depth first in
// declaration order, with the leaf's dotted YAML path (prefix.name), its
// struct field and its settable value when v is settable.
func eachLeaf(v reflect.Value, prefix string, fn func(path string, f reflect.StructField, v reflect.Value)) {
	for _, k := range keys(v.Type()) {
		path := k.name
		if prefix != "" {
			path = prefix + "." + k.name
		}
		fv := v.FieldByIndex(k.field.Index)
		if isSection(fv.Type()) {
			eachLeaf(fv, path, fn)
			continue
		}
		fn(path, k.field, fv)
	}
}

// leafPaths returns the dotted YAML path of every leaf of Config.
func leafPaths() []string {
	var ps []string
	eachLeaf(reflect.ValueOf(Config{}), "", func(path string, _ reflect.StructField, _ reflect.Value) {
		ps = append(ps, path)
	})
	return ps
}
