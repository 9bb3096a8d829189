package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
)

// envPrefix starts the name of every environment variable Load reads.
const envPrefix = "VIGIL_"

// envName returns the environment variable of the key at the dotted YAML
// path: "store.redis.url" → "VIGIL_STORE_REDIS_URL".
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// loadEnv sets the keys of c named by VIGIL_ variables in env.
func (c *Config) loadEnv(env []string) error {
	return setFromEnv(reflect.ValueOf(c).Elem(), env)
}

// setFromEnv sets the leaves of the section v from the variables in env
// that name them, and returns every value that does not parse and every
// unknown variable inside a known section, joined.
func setFromEnv(v reflect.Value, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		k, val, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, envPrefix) {
			vars[k] = val // the last wins, as with exec.Cmd.Env
		}
	}
	if len(vars) == 0 {
		return nil
	}

	var errs []error
	known := map[string]bool{}
	eachLeaf(v, "", func(path string, _ reflect.StructField, fv reflect.Value) {
		name := envName(path)
		known[name] = true
		s, ok := vars[name]
		if !ok {
			return
		}
		if err := setString(fv, s); err != nil {
			errs = append(errs, vigil.FieldError(name, "%v for %s, got %q", err, path, s))
		}
	})

	var sections []string // the YAML names of v's sections
	for _, k := range keys(v.Type()) {
		if isSection(k.field.Type) {
			sections = append(sections, k.name)
		}
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if known[name] {
			continue
		}
		for _, s := range sections {
			if strings.HasPrefix(name, envName(s)+"_") {
				errs = append(errs, vigil.FieldError(name, "unknown variable; %s has no such key", s))
				break
			}
		}
	}
	return errors.Join(errs...)
}

var durationType = reflect.TypeFor[time.Duration]()

// setString parses s by v's type and stores it in v. Its error says what
// was wanted, for a message that also names the variable and the key.
func setString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("want a duration such as 15s or 1m30s")
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return errors.New("want an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return errors.New("want a non-negative integer")
		}
		v.SetUint(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("config: cannot set %s from the environment", v.Type())
		}
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
	default:
		return fmt.Errorf("config: cannot set %s from the environment", v.Type())
	}
	return nil
}
