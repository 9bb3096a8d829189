// Package config is Vigil's one typed configuration, shared by every role of
// the binary (vigil serve, vigil worker, vigil mcp). It is the only place,
// besides cmd, where configuration is parsed: other packages receive the
// typed values they need (an address, a duration, a URL) and never read
// files, flags or the environment themselves.
//
// # Precedence
//
// Load builds a Config in layers, each overriding the one before it:
//
//  1. the defaults (Default): an embedded store in ./vigil-data and the HTTP
//     server on 127.0.0.1:7070, so `vigil serve` runs with no file at all;
//  2. the YAML file, when a path is given; keys it leaves out keep their
//     defaults, and a key the Config does not know is an error that names
//     the key, the file and the line;
//  3. environment variables, one per key (see Naming);
//  4. command-line flags the user actually set (Overrides);
//
// and then checks the result with Validate, which reports every problem at
// once. Load returns either a valid Config or an error, never both.
//
// # Naming
//
// A key's YAML path is its sections and name in snake_case, joined by dots:
// server.addr, store.redis.url. Error messages name fields by that path.
//
// Its environment variable is VIGIL_ followed by the same path in upper case
// with underscores instead of dots: VIGIL_SERVER_ADDR, VIGIL_STORE_REDIS_URL,
// VIGIL_STORE_MAX_EVENTS_PER_THREAD. The names are derived from the yaml tags
// of the Config struct, so a field added to a section gets its variable with
// no further code. Values are parsed by the field's type: strings as they
// are, integers in base 10, booleans as strconv.ParseBool does, durations as
// time.ParseDuration does ("15s", "1m30s"), and lists as comma-separated
// items. A value that does not parse is an error naming the variable. A
// variable that starts with the prefix of a known section (VIGIL_SERVER_,
// VIGIL_STORE_, …) but names no key is an error too, so that a typo is not
// silently ignored; other VIGIL_ variables (VIGIL_CONFIG, say) are left to
// whoever reads them.
//
// YAML files are not interpolated: to keep a secret out of a file, leave a
// placeholder in the file and set the key's variable.
//
// # The store driver
//
// store.driver is bolt or redis. Left empty, it is derived after all the
// layers: redis when store.redis.url is set, bolt otherwise. So setting only
// VIGIL_STORE_REDIS_URL moves a deployment to Redis, while a file that says
// driver: bolt keeps the embedded store whatever URL is set. The --redis flag
// sets the URL and the driver both.
//
// # Secrets
//
// Fields tagged secret (the password of store.redis.url, memory.key,
// auth.stream_secret, auth.jwt.hs256_secret, and any password in the URLs
// of the domain tools, tools.weather, tools.price and tools.news) are
// masked by Redacted and by LogValue, so a Config can be logged as it is:
// slog.Info("starting", "config", cfg).
package config
