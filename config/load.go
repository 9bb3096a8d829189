package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil"
)

// Load returns the configuration made of the defaults, then the YAML file at
// path (skipped when path is ""), then the VIGIL_ variables in env (in
// os.Environ form, "KEY=value"; of a key given twice the last wins), then
// the flags set in flags, after checking it with Validate.
//
// The error names what is wrong and where: the file, line and key of an
// unknown key; the variable of a value that does not parse; the YAML path of
// a value Validate rejects. Problems in one layer are all reported together;
// a layer that fails stops the later ones.
func Load(path string, env []string, flags Overrides) (Config, error) {
	c := defaults()
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return Config{}, err
		}
	}
	if err := c.loadEnv(env); err != nil {
		return Config{}, err
	}
	flags.apply(&c)
	c.resolve()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadFile decodes the YAML file at path over c. Keys the file leaves out
// keep their values.
func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}

	// First the tree, for the keys: yaml.v3's own unknown-field error names
	// the Go type rather than the key's path, and stops at the first one.
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil // an empty file, or only comments: nothing to change
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: want one YAML document, found more", path)
	}
	if len(doc.Content) == 1 {
		if errs := checkKeys(path, doc.Content[0], reflect.TypeFor[Config](), ""); len(errs) > 0 {
			return errors.Join(errs...)
		}
	}

	// Then the values, by yaml.v3 with KnownFields as a backstop for any
	// key the walk above let through.
	dec = yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// checkKeys returns an error for every key in the mapping n, and in the
// mappings under it, that the section type t does not have. Each names the
// key by its YAML path and its place in the file, and lists the keys the
// section does take. A node that is not a mapping is left to the decoder,
// which reports the type mismatch.
func checkKeys(file string, n *yaml.Node, t reflect.Type, prefix string) []error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	ks := keys(t)
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Value == "<<" { // a merge key: yaml.v3 and KnownFields check what it merges
			continue
		}
		path := kn.Value
		if prefix != "" {
			path = prefix + "." + kn.Value
		}
		f, ok := lookup(ks, kn.Value)
		if !ok {
			errs = append(errs, fmt.Errorf("%s:%d:%d: %w", file, kn.Line, kn.Column,
				vigil.FieldError(path, "unknown key; %s", takes(prefix, ks))))
			continue
		}
		if isSection(f.Type) {
			errs = append(errs, checkKeys(file, vn, f.Type, path)...)
		}
	}
	return errs
}

func lookup(ks []key, name string) (reflect.StructField, bool) {
	for _, k := range ks {
		if k.name == name {
			return k.field, true
		}
	}
	return reflect.StructField{}, false
}

// takes describes the keys a section accepts, for an unknown-key error.
func takes(section string, ks []key) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.name
	}
	if section == "" {
		return "the sections are " + strings.Join(names, ", ")
	}
	return section + " takes " + strings.Join(names, ", ")
}

// Overrides holds the values of the command-line flags that override the
// configuration. A nil field is a flag the user did not set, which leaves
// the value from the file, the environment or the defaults alone; so the
// zero Overrides overrides nothing.
//
// The flag naming the config file itself (--config) is not here: it chooses
// Load's path rather than overriding a value, and cmd registers it.
type Overrides struct {
	Addr     *string // --addr: server.addr
	DataDir  *string // --data: store.data_dir
	RedisURL *string // --redis: store.redis.url, and store.driver redis
}

// Register defines the override flags on fs; parsing fs then fills o with
// the flags that appear on the command line, and only those.
func (o *Overrides) Register(fs *flag.FlagSet) {
	set := func(p **string) func(string) error {
		return func(s string) error { *p = &s; return nil }
	}
	fs.Func("addr", "listen on `HOST:PORT` (server.addr)", set(&o.Addr))
	fs.Func("data", "keep the embedded store in `DIR` (store.data_dir)", set(&o.DataDir))
	fs.Func("redis", "use the Redis store at `URL` (store.redis.url; sets store.driver to redis)", set(&o.RedisURL))
}

// apply writes the flags that were set over c.
func (o Overrides) apply(c *Config) {
	if o.Addr != nil {
		c.Server.Addr = *o.Addr
	}
	if o.DataDir != nil {
		c.Store.DataDir = *o.DataDir
	}
	if o.RedisURL != nil {
		c.Store.Redis.URL = *o.RedisURL
		c.Store.Driver = DriverRedis
	}
}
