package config

import (
	"log/slog"
	"net/url"
	"reflect"
	"time"
)

// Secrets are marked on their fields with a secret tag:
//
//	secret:"url"   a URL whose password is masked (redis://u:xxxxx@host)
//	secret:"true"  a value masked whole (API keys, tokens)
//
// Only string fields may carry the tag.

// masked replaces a secret, or a secret URL that does not parse.
const masked = "xxxxx"

// Redacted returns a copy of c with every secret masked: the password of
// store.redis.url, and in time any key, token or password a section adds.
// Use it to show or log a configuration; c itself is not changed.
func (c Config) Redacted() Config {
	eachLeaf(reflect.ValueOf(&c).Elem(), "", func(_ string, f reflect.StructField, v reflect.Value) {
		kind, ok := f.Tag.Lookup("secret")
		if !ok || v.Kind() != reflect.String || v.String() == "" {
			return
		}
		if kind == "url" {
			v.SetString(redactURL(v.String()))
			return
		}
		v.SetString(masked)
	})
	return c
}

// redactURL masks the password in the URL s. A URL that does not parse is
// masked whole, since where its password is cannot be told.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return masked
	}
	return u.Redacted()
}

// LogValue makes a Config log as groups of sections and keys named as in
// YAML, with secrets masked and durations written as "15s", so that
// slog.Info("starting", "config", c) is safe.
func (c Config) LogValue() slog.Value {
	return sectionValue(reflect.ValueOf(c.Redacted()))
}

func sectionValue(v reflect.Value) slog.Value {
	ks := keys(v.Type())
	attrs := make([]slog.Attr, 0, len(ks))
	for _, k := range ks {
		fv := v.FieldByIndex(k.field.Index)
		switch {
		case isSection(fv.Type()):
			attrs = append(attrs, slog.Attr{Key: k.name, Value: sectionValue(fv)})
		case fv.Type() == durationType:
			attrs = append(attrs, slog.String(k.name, time.Duration(fv.Int()).String()))
		default:
			attrs = append(attrs, slog.Any(k.name, fv.Interface()))
		}
	}
	return slog.GroupValue(attrs...)
}
