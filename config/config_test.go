package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil"
)

// writeFile writes a YAML file into a temp dir and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func ptr(s string) *string { return &s }

func TestDefault(t *testing.T) {
	want := Config{
		Server: Server{Addr: "127.0.0.1:7070", Heartbeat: 15 * time.Second, ShutdownTimeout: 10 * time.Second},
		Log:    Log{Level: "info", Format: "json"},
		Store: Store{
			Driver: "bolt", DataDir: "./vigil-data", MaxEventsPerThread: 100000,
			Redis: Redis{Prefix: "vigil", MaxFollowers: 1024, Coalesce: true},
		},
		Memory: Memory{ShortTermTokens: 2000},
		Auth: Auth{
			Mode: "none", StreamTokenTTL: 5 * time.Minute,
			JWT: JWT{Leeway: 30 * time.Second, TenantClaim: "tenant", UserClaim: "sub", RolesClaim: "roles"},
		},
		Workers: Workers{Embedded: true, Concurrency: 256, TenantConcurrency: 4, Lease: 30 * time.Second, StopTimeout: 10 * time.Second},
		Scheduler: Scheduler{Enabled: true, Tick: 500 * time.Millisecond, Batch: 1000, Grace: time.Minute, LeaseTTL: 15 * time.Second,
			SweepEvery: 5 * time.Minute, SweepAfter: time.Minute},
		Retry: Retry{Transient: 3, Backoff: []string{"10s", "20s", "40s"}, JitterPercent: 20},
		Tools: Tools{
			Weather: WeatherTool{GeocodingURL: "https://geocoding-api.open-meteo.com", ForecastURL: "https://api.open-meteo.com"},
			Price:   PriceTool{URL: "https://query1.finance.yahoo.com"},
			News:    NewsTool{URL: "https://news.google.com/rss"},
		},
		LLM:    LLM{Timeout: 30 * time.Second},
		Quotas: Quotas{RequestsPerMinute: 600, ToolCallsPerMinute: 120, MaxActiveTasks: 10, MaxRunDuration: 30 * time.Minute},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v\nwant %+v", got, want)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	got, err := Load("", nil, Overrides{})
	if err != nil {
		t.Fatalf("Load with no file: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load with no file = %+v\nwant %+v", got, want)
	}
	if p := got.Store.BoltPath(); p != filepath.Join("vigil-data", "vigil.db") {
		t.Errorf("BoltPath() = %q", p)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "---\n"} {
		got, err := Load(writeFile(t, text), nil, Overrides{})
		if err != nil {
			t.Errorf("Load(%q): %v", text, err)
			continue
		}
		if !reflect.DeepEqual(got, Default()) {
			t.Errorf("Load(%q) = %+v, want the defaults", text, got)
		}
	}
}

func TestPrecedence(t *testing.T) {
	const file = `
server:
  addr: 127.0.0.1:1000
  heartbeat: 1s
store:
  data_dir: /file
  max_events_per_thread: 10
`
	tests := []struct {
		name  string
		file  string // "" means no file
		env   []string
		flags Overrides
		check func(c Config) string // returns what is wrong, or ""
	}{
		{
			name: "file over defaults; keys the file leaves out keep defaults",
			file: file,
			check: func(c Config) string {
				d := Default()
				switch {
				case c.Server.Addr != "127.0.0.1:1000", c.Server.Heartbeat != time.Second,
					c.Store.DataDir != "/file", c.Store.MaxEventsPerThread != 10:
					return "file values not applied"
				case c.Server.ShutdownTimeout != d.Server.ShutdownTimeout, c.Log != d.Log, c.Store.Redis != d.Store.Redis:
					return "keys absent from the file lost their defaults"
				}
				return ""
			},
		},
		{
			name: "env over file",
			file: file,
			env: []string{
				"VIGIL_SERVER_ADDR=127.0.0.1:2000", "VIGIL_SERVER_HEARTBEAT=2s",
				"VIGIL_STORE_MAX_EVENTS_PER_THREAD=20", "VIGIL_LOG_FORMAT=text",
				"PATH=/bin", "VIGIL_CONFIG=/elsewhere.yaml", // not ours: ignored
			},
			check: func(c Config) string {
				if c.Server.Addr != "127.0.0.1:2000" || c.Server.Heartbeat != 2*time.Second ||
					c.Store.MaxEventsPerThread != 20 || c.Log.Format != "text" || c.Store.DataDir != "/file" {
					return "env did not override the file"
				}
				return ""
			},
		},
		{
			name:  "flags over env over file",
			file:  file,
			env:   []string{"VIGIL_SERVER_ADDR=127.0.0.1:2000", "VIGIL_STORE_DATA_DIR=/env"},
			flags: Overrides{Addr: ptr("127.0.0.1:3000"), DataDir: ptr("/flag")},
			check: func(c Config) string {
				if c.Server.Addr != "127.0.0.1:3000" || c.Store.DataDir != "/flag" || c.Server.Heartbeat != time.Second {
					return "flags did not override env and file"
				}
				return ""
			},
		},
		{
			name: "env without a file",
			env:  []string{"VIGIL_SERVER_ADDR=localhost:0"},
			check: func(c Config) string {
				if c.Server.Addr != "localhost:0" {
					return "env not applied over defaults"
				}
				return ""
			},
		},
		{
			name: "last duplicate env entry wins",
			env:  []string{"VIGIL_SERVER_ADDR=127.0.0.1:1", "VIGIL_SERVER_ADDR=127.0.0.1:2"},
			check: func(c Config) string {
				if c.Server.Addr != "127.0.0.1:2" {
					return "want the last value"
				}
				return ""
			},
		},
		{
			name: "a redis url alone selects redis",
			env:  []string{"VIGIL_STORE_REDIS_URL=redis://localhost:6379/0"},
			check: func(c Config) string {
				if c.Store.Driver != DriverRedis {
					return "driver " + c.Store.Driver
				}
				return ""
			},
		},
		{
			name: "an explicit bolt driver keeps bolt whatever the url",
			file: "store:\n  driver: bolt\n",
			env:  []string{"VIGIL_STORE_REDIS_URL=redis://localhost:6379/0"},
			check: func(c Config) string {
				if c.Store.Driver != DriverBolt {
					return "driver " + c.Store.Driver
				}
				return ""
			},
		},
		{
			name:  "--redis sets url and driver over an explicit bolt",
			file:  "store:\n  driver: bolt\n",
			flags: Overrides{RedisURL: ptr("rediss://u:p@cache:6380/2")},
			check: func(c Config) string {
				if c.Store.Driver != DriverRedis || c.Store.Redis.URL != "rediss://u:p@cache:6380/2" {
					return "driver " + c.Store.Driver + " url " + c.Store.Redis.URL
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			c, err := Load(path, tt.env, tt.flags)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if msg := tt.check(c); msg != "" {
				t.Errorf("%s: got %+v", msg, c)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // every message, in order; nil for valid
	}{
		{"defaults", func(c *Config) {}, nil},
		{"port 0", func(c *Config) { c.Server.Addr = "127.0.0.1:0" }, nil},
		{"localhost", func(c *Config) { c.Server.Addr = "LocalHost:7070" }, nil},
		{"other 127/8", func(c *Config) { c.Server.Addr = "127.1.2.3:7070" }, nil},
		{"ipv6 loopback", func(c *Config) { c.Server.Addr = "[::1]:7070" }, nil},
		{"base url", func(c *Config) { c.Server.BaseURL = "https://vigil.example.com/app" }, nil},
		{"redis", func(c *Config) {
			c.Store.Driver = DriverRedis
			c.Store.Redis.URL = "rediss://user:secret@cache.internal:6380/3"
		}, nil},
		{"redis without port or db", func(c *Config) {
			c.Store.Driver = DriverRedis
			c.Store.Redis.URL = "redis://cache"
		}, nil},
		{"bolt without data dir is fine with redis", func(c *Config) {
			c.Store.Driver = DriverRedis
			c.Store.Redis.URL = "redis://cache:6379/0"
			c.Store.DataDir = ""
		}, nil},

		{"workers apart with redis", func(c *Config) {
			c.Store.Driver = DriverRedis
			c.Store.Redis.URL = "redis://cache:6379/0"
			c.Workers.Embedded = false
		}, nil},
		{"an llm", func(c *Config) {
			c.LLM = LLM{Provider: "openai", BaseURL: "https://api.deepseek.com/v1", Model: "deepseek-chat", APIKeyEnv: "DEEPSEEK_API_KEY", Timeout: time.Minute}
		}, nil},
		{"role scopes", func(c *Config) {
			c.Auth.Scopes.Member = []string{"read:*", "write:email"}
			c.Auth.Scopes.Viewer = []string{"read web", ""}
		}, []string{
			`auth.scopes.viewer.0: want a scope such as read:web, read:* or *, got "read web"`,
			`auth.scopes.viewer.1: want a scope such as read:web, read:* or *, got ""`,
		}},
		{"workers apart with bolt", func(c *Config) { c.Workers.Embedded = false },
			[]string{`workers.embedded: the bolt store is one process's: its runs need workers inside vigil serve (use redis for vigil worker)`}},
		{"worker numbers", func(c *Config) {
			c.Workers.Concurrency, c.Workers.TenantConcurrency, c.Workers.Rate, c.Workers.Lease = 4, 5, -1, 0
		}, []string{
			`workers.tenant_concurrency: want from 1 to workers.concurrency (4), got 5`,
			`workers.rate: must be 0 (no cap) or more, got -1`,
			`workers.lease: want at least 1s, got 0s`,
		}},
		{"scheduler numbers", func(c *Config) { c.Scheduler.Tick, c.Scheduler.Batch = time.Hour, 0 }, []string{
			`scheduler.tick: want from 10ms to 1m, got 1h0m0s`,
			`scheduler.batch: want from 1 to 10000, got 0`,
		}},
		{"sweep settings", func(c *Config) { c.Scheduler.SweepEvery, c.Scheduler.SweepAfter = time.Second, time.Second }, nil},
		{"sweep settings at a long tick", func(c *Config) {
			c.Scheduler.Tick, c.Scheduler.SweepEvery, c.Scheduler.SweepAfter = 30*time.Second, 30*time.Second, 30*time.Second
		}, nil},
		{"sweep numbers", func(c *Config) { c.Scheduler.SweepEvery, c.Scheduler.SweepAfter = 0, 500*time.Millisecond }, []string{
			`scheduler.sweep_every: must be positive, got 0s`,
			`scheduler.sweep_after: want at least 1s (1s, and at least scheduler.tick): a shorter wait races the enqueueing of new runs; got 500ms`,
		}},
		{"negative sweep after", func(c *Config) { c.Scheduler.SweepAfter = -time.Minute }, []string{
			`scheduler.sweep_after: want at least 1s (1s, and at least scheduler.tick): a shorter wait races the enqueueing of new runs; got -1m0s`,
		}},
		{"sweeps shorter than the tick", func(c *Config) {
			c.Scheduler.Tick, c.Scheduler.SweepEvery, c.Scheduler.SweepAfter = 2*time.Second, time.Second, time.Second
		}, []string{
			`scheduler.sweep_every: want at least scheduler.tick (2s), since sweeps start on ticks; got 1s`,
			`scheduler.sweep_after: want at least 2s (1s, and at least scheduler.tick): a shorter wait races the enqueueing of new runs; got 1s`,
		}},
		{"sweeps beside an invalid tick", func(c *Config) { c.Scheduler.Tick = time.Hour },
			[]string{`scheduler.tick: want from 10ms to 1m, got 1h0m0s`}},
		{"tool urls elsewhere", func(c *Config) {
			c.Tools.Weather = WeatherTool{GeocodingURL: "http://127.0.0.1:8080", ForecastURL: "https://mirror.corp.example/open-meteo/"}
			c.Tools.Price.URL = "https://proxy.corp.example:8443/yahoo"
			c.Tools.News.URL = "https://feeds:s3cret@news.corp.example/rss"
		}, nil},
		{"tool urls", func(c *Config) {
			c.Tools.Weather = WeatherTool{GeocodingURL: "geocoding-api.open-meteo.com", ForecastURL: "ftp://api.open-meteo.com"}
			c.Tools.Price.URL = ""
			c.Tools.News.URL = "https://news.google.com/rss?hl=en"
		}, []string{
			`tools.weather.geocoding_url: want an absolute http or https URL, got "geocoding-api.open-meteo.com"`,
			`tools.weather.forecast_url: want an absolute http or https URL, got "ftp://api.open-meteo.com"`,
			`tools.price.url: want an absolute http or https URL, got ""`,
			`tools.news.url: want a URL without a query or fragment (the tool adds its own), got "https://news.google.com/rss?hl=en"`,
		}},
		{"tool url password not echoed", func(c *Config) {
			c.Tools.News.URL = "https://feeds:hunter2@news.corp.example/rss#top"
			c.Tools.Price.URL = "http://u:hunter2@[::1"
		}, []string{
			`tools.price.url: want an absolute http or https URL, got "xxxxx"`,
			`tools.news.url: want a URL without a query or fragment (the tool adds its own), got "https://feeds:xxxxx@news.corp.example/rss#top"`,
		}},
		{"retry backoff", func(c *Config) { c.Retry.Backoff = []string{"10s", "soon"} },
			[]string{`retry.backoff: wait 2: want a duration from 1ms to 24h such as 10s, got "soon"`}},
		{"llm", func(c *Config) { c.LLM.Provider, c.LLM.BaseURL = "gpt", "ftp://x" }, []string{
			`llm.provider: want one of "" (the offline model), openai, ollama, anthropic; got "gpt"`,
			`llm.base_url: want an absolute http or https URL, got "ftp://x"`,
		}},
		{"llm without model", func(c *Config) { c.LLM.Provider = "openai" },
			[]string{`llm.model: provider openai needs a model name`}},

		{"addr without port", func(c *Config) { c.Server.Addr = "7070" },
			[]string{`server.addr: want HOST:PORT, got "7070"`}},
		{"addr port out of range", func(c *Config) { c.Server.Addr = "127.0.0.1:70000" },
			[]string{`server.addr: want HOST:PORT with a port from 0 to 65535, got "127.0.0.1:70000"`}},
		{"addr named port", func(c *Config) { c.Server.Addr = "127.0.0.1:http" },
			[]string{`server.addr: want HOST:PORT with a port from 0 to 65535, got "127.0.0.1:http"`}},
		{"all interfaces", func(c *Config) { c.Server.Addr = "0.0.0.0:7070" },
			[]string{"server.addr: refusing to bind non-loopback address 0.0.0.0:7070 without authentication; configure auth or bind 127.0.0.1"}},
		{"empty host", func(c *Config) { c.Server.Addr = ":7070" },
			[]string{"server.addr: refusing to bind non-loopback address :7070 without authentication; configure auth or bind 127.0.0.1"}},
		{"a host name", func(c *Config) { c.Server.Addr = "vigil.example.com:7070" },
			[]string{"server.addr: refusing to bind non-loopback address vigil.example.com:7070 without authentication; configure auth or bind 127.0.0.1"}},
		{"ipv6 any", func(c *Config) { c.Server.Addr = "[::]:7070" },
			[]string{"server.addr: refusing to bind non-loopback address [::]:7070 without authentication; configure auth or bind 127.0.0.1"}},
		{"zero heartbeat", func(c *Config) { c.Server.Heartbeat = 0 },
			[]string{"server.heartbeat: must be positive, got 0s"}},
		{"negative shutdown timeout", func(c *Config) { c.Server.ShutdownTimeout = -time.Second },
			[]string{"server.shutdown_timeout: must be positive, got -1s"}},
		{"relative base url", func(c *Config) { c.Server.BaseURL = "vigil.example.com" },
			[]string{`server.base_url: want an absolute http or https URL, got "vigil.example.com"`}},
		{"log level", func(c *Config) { c.Log.Level = "verbose" },
			[]string{`log.level: want one of debug, info, warn, error; got "verbose"`}},
		{"log format", func(c *Config) { c.Log.Format = "xml" },
			[]string{`log.format: want one of json, text; got "xml"`}},
		{"driver", func(c *Config) { c.Store.Driver = "sqlite" },
			[]string{`store.driver: want one of bolt, redis; got "sqlite"`}},
		{"redis without url", func(c *Config) { c.Store.Driver = DriverRedis },
			[]string{"store.driver: redis needs store.redis.url"}},
		{"bolt without data dir", func(c *Config) { c.Store.DataDir = "" },
			[]string{"store.data_dir: bolt needs a data directory"}},
		{"max events", func(c *Config) { c.Store.MaxEventsPerThread = 0 },
			[]string{"store.max_events_per_thread: must be at least 1, got 0"}},
		{"redis scheme", func(c *Config) { c.Store.Redis.URL = "http://cache:6379" },
			[]string{`store.redis.url: scheme must be redis or rediss, got "http"`}},
		{"redis host", func(c *Config) { c.Store.Redis.URL = "redis:///0" },
			[]string{"store.redis.url: want redis://[user:pass@]host:port/db or rediss://…; the host is missing"}},
		{"redis port", func(c *Config) { c.Store.Redis.URL = "redis://cache:0/0" },
			[]string{"store.redis.url: want redis://[user:pass@]host:port/db or rediss://…; the port must be from 1 to 65535"}},
		{"redis db", func(c *Config) { c.Store.Redis.URL = "redis://cache:6379/zero" },
			[]string{"store.redis.url: want redis://[user:pass@]host:port/db or rediss://…; the database must be a number"}},
		{"redis unparsable, password not echoed", func(c *Config) { c.Store.Redis.URL = "redis://u:hunter2@cache:port/0" },
			[]string{"store.redis.url: want redis://[user:pass@]host:port/db or rediss://…"}},
		{"redis prefix", func(c *Config) { c.Store.Redis.Prefix = "" },
			[]string{`store.redis.prefix: want 1 to 64 characters from [A-Za-z0-9_.:-], got ""`}},
		{"redis prefix with space", func(c *Config) { c.Store.Redis.Prefix = "my app" },
			[]string{`store.redis.prefix: want 1 to 64 characters from [A-Za-z0-9_.:-], got "my app"`}},
		{"max followers", func(c *Config) { c.Store.Redis.MaxFollowers = -1 },
			[]string{"store.redis.max_followers: must be at least 1, got -1"}},
		{"memory key not base64", func(c *Config) { c.Memory.Key = "not base64!" },
			[]string{"memory.key: want the base64 of 32 random bytes (openssl rand -base64 32)"}},
		{"memory key too short", func(c *Config) { c.Memory.Key = "c2hvcnQ=" },
			[]string{"memory.key: want the base64 of 32 random bytes (openssl rand -base64 32)"}},
		{"short-term budget", func(c *Config) { c.Memory.ShortTermTokens = 0 },
			[]string{"memory.short_term_tokens: must be at least 1, got 0"}},

		{"auth keys", func(c *Config) { c.Auth.Mode = AuthKeys; c.Server.Addr = "0.0.0.0:7070" }, nil},
		{"auth jwt hs256", func(c *Config) {
			c.Auth.Mode = AuthJWT
			c.Auth.JWT.HS256Secret = strings.Repeat("s", 32)
			c.Auth.JWT.Issuer, c.Auth.JWT.Audience = "https://idp.example.com/", "vigil"
		}, nil},
		{"auth keys+jwt jwks", func(c *Config) {
			c.Auth.Mode = AuthKeysJWT
			c.Auth.JWT.JWKSURL = "https://idp.example.com/.well-known/jwks.json"
			c.Auth.JWT.Issuer, c.Auth.JWT.Audience = "https://idp.example.com/", "vigil"
			c.Auth.StreamSecret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		}, nil},
		{"auth jwks on loopback http", func(c *Config) { c.Auth.JWT.JWKSURL = "http://127.0.0.1:8080/jwks" }, nil},
		{"auth mode", func(c *Config) { c.Auth.Mode = "basic" },
			[]string{`auth.mode: want one of none, keys, jwt, keys+jwt; got "basic"`}},
		{"auth stream ttl", func(c *Config) { c.Auth.StreamTokenTTL = 2 * time.Hour },
			[]string{"auth.stream_token_ttl: want from 1s to 1h (stream tokens are short-lived), got 2h0m0s"}},
		{"auth stream secret, not echoed", func(c *Config) { c.Auth.StreamSecret = "c2hvcnQ=" },
			[]string{"auth.stream_secret: want the base64 of at least 32 random bytes (openssl rand -base64 32)"}},
		{"auth jwt without keys, issuer, audience", func(c *Config) { c.Auth.Mode = AuthJWT }, []string{
			"auth.jwt: mode jwt needs hs256_secret or jwks_url",
			"auth.jwt.issuer: mode jwt needs the issuer tokens must carry",
			"auth.jwt.audience: mode jwt needs the audience tokens must carry",
		}},
		{"auth jwt with both, short secret not echoed", func(c *Config) {
			c.Auth.Mode = AuthKeysJWT
			c.Auth.JWT.HS256Secret = "hunter2"
			c.Auth.JWT.JWKSURL = "http://idp.example.com/jwks"
			c.Auth.JWT.Issuer, c.Auth.JWT.Audience = "i", "a"
		}, []string{
			"auth.jwt: set hs256_secret or jwks_url, not both",
			"auth.jwt.hs256_secret: must be at least 32 bytes",
			`auth.jwt.jwks_url: want https (http only on loopback), got "http://idp.example.com/jwks"`,
		}},
		{"auth jwks url", func(c *Config) { c.Auth.JWT.JWKSURL = "idp.example.com/jwks" },
			[]string{`auth.jwt.jwks_url: want an absolute https URL, got "idp.example.com/jwks"`}},
		{"auth leeway and claims", func(c *Config) { c.Auth.JWT.Leeway = -time.Second; c.Auth.JWT.RolesClaim = "" }, []string{
			"auth.jwt.leeway: want from 0s to 5m, got -1s",
			"auth.jwt.roles_claim: must name a claim",
		}},

		{"quotas off", func(c *Config) { c.Quotas = Quotas{} }, nil},
		{"quota overrides", func(c *Config) {
			c.Quotas.Tenants = []string{"acme requests_per_minute=1200 max_active_tasks=50", "  trial   max_run_duration=2m  ", "internal requests_per_minute=0"}
		}, nil},
		{"quota numbers", func(c *Config) {
			c.Quotas = Quotas{RequestsPerMinute: -1, ToolCallsPerMinute: 2_000_000, MaxActiveTasks: -5, MaxRunDuration: 500 * time.Millisecond}
		}, []string{
			"quotas.requests_per_minute: want from 0 (no limit) to 1000000, got -1",
			"quotas.tool_calls_per_minute: want from 0 (no limit) to 1000000, got 2000000",
			"quotas.max_active_tasks: want from 0 (no limit) to 100000, got -5",
			"quotas.max_run_duration: want 0 (no limit) or from 1s to 24h, got 500ms",
		}},
		{"quota run duration too long", func(c *Config) { c.Quotas.MaxRunDuration = 25 * time.Hour },
			[]string{"quotas.max_run_duration: want 0 (no limit) or from 1s to 24h, got 25h0m0s"}},
		{"quota overrides, each problem", func(c *Config) {
			c.Quotas.Tenants = []string{
				"acme max_active_tasks=50",
				"",
				"max_active_tasks=5",
				"bad/tenant max_active_tasks=5",
				"lonely",
				"globex rpm=5",
				"globex max_active_tasks",
				"globex max_active_tasks=1 max_active_tasks=2",
				"globex requests_per_minute=-1",
				"globex tool_calls_per_minute=lots",
				"globex max_active_tasks=100001",
				"globex max_run_duration=48h",
				"acme requests_per_minute=5",
			}
		}, []string{
			`quotas.tenants: entry 2 (""): empty; want a tenant and key=value pairs, such as "acme max_active_tasks=50"`,
			`quotas.tenants: entry 3 ("max_active_tasks=5"): starts with "max_active_tasks=5"; want a tenant id (1 to 128 characters from [A-Za-z0-9_.-]) first`,
			`quotas.tenants: entry 4 ("bad/tenant max_active_tasks=5"): starts with "bad/tenant"; want a tenant id (1 to 128 characters from [A-Za-z0-9_.-]) first`,
			`quotas.tenants: entry 5 ("lonely"): sets nothing; want key=value pairs after the tenant, with the keys requests_per_minute, tool_calls_per_minute, max_active_tasks or max_run_duration`,
			`quotas.tenants: entry 6 ("globex rpm=5"): unknown key "rpm"; want requests_per_minute, tool_calls_per_minute, max_active_tasks or max_run_duration`,
			`quotas.tenants: entry 7 ("globex max_active_tasks"): "max_active_tasks" is not key=value`,
			`quotas.tenants: entry 8 ("globex max_active_tasks=1 max_active_tasks=2"): sets max_active_tasks twice`,
			`quotas.tenants: entry 9 ("globex requests_per_minute=-1"): requests_per_minute: want from 0 (no limit) to 1000000, got "-1"`,
			`quotas.tenants: entry 10 ("globex tool_calls_per_minute=lots"): tool_calls_per_minute: want from 0 (no limit) to 1000000, got "lots"`,
			`quotas.tenants: entry 11 ("globex max_active_tasks=100001"): max_active_tasks: want from 0 (no limit) to 100000, got "100001"`,
			`quotas.tenants: entry 12 ("globex max_run_duration=48h"): max_run_duration: want 0 (no limit) or a duration from 1s to 24h, got "48h"`,
			`quotas.tenants: entry 13 ("acme requests_per_minute=5"): tenant acme has entry 1 already; give each tenant one`,
		}},

		{"every problem at once", func(c *Config) {
			c.Server.Addr = "nope"
			c.Server.Heartbeat = 0
			c.Log.Level = ""
			c.Store.Driver = DriverRedis
			c.Store.MaxEventsPerThread = -5
		}, []string{
			`server.addr: want HOST:PORT, got "nope"`,
			"server.heartbeat: must be positive, got 0s",
			`log.level: want one of debug, info, warn, error; got ""`,
			"store.driver: redis needs store.redis.url",
			"store.max_events_per_thread: must be at least 1, got -5",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			got := messages(t, c.Validate())
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate():\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

// messages splits a joined error into its messages, checking that each
// part is an Invalid *vigil.Error whose Field starts its message.
func messages(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not joined", err)
	}
	var msgs []string
	for _, e := range j.Unwrap() {
		var ve *vigil.Error
		if !errors.As(e, &ve) || ve.Code != vigil.Invalid || ve.Field == "" {
			t.Errorf("%v: want an Invalid *vigil.Error with a field, got %#v", e, e)
		} else if !strings.HasPrefix(e.Error(), ve.Field+": ") {
			t.Errorf("%v: message does not start with the field %q", e, ve.Field)
		}
		msgs = append(msgs, e.Error())
	}
	return msgs
}

// TestAuthConfigured checks that turning authentication on is what lets
// a non-loopback address validate.
func TestAuthConfigured(t *testing.T) {
	if Default().authConfigured() {
		t.Fatal("authConfigured() = true by default")
	}
	for mode, want := range map[string]bool{"none": false, "keys": true, "jwt": true, "keys+jwt": true} {
		c := Default()
		c.Server.Addr = "0.0.0.0:7070"
		c.Auth.Mode = mode
		c.Auth.JWT.HS256Secret = strings.Repeat("s", 32)
		c.Auth.JWT.Issuer, c.Auth.JWT.Audience = "https://idp.example.com/", "vigil"
		if got := c.authConfigured(); got != want {
			t.Errorf("mode %s: authConfigured() = %v, want %v", mode, got, want)
		}
		if err := c.Validate(); (err == nil) != want {
			t.Errorf("mode %s on 0.0.0.0: Validate() = %v", mode, err)
		}
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error, after the file name
	}{
		{"top level", "serve:\n  addr: 127.0.0.1:1\n",
			[]string{`:1:1: serve: unknown key; the sections are server, log, store`}},
		{"in a section", "server:\n  adr: 127.0.0.1:1\n",
			[]string{`:2:3: server.adr: unknown key; server takes addr, heartbeat, shutdown_timeout, base_url`}},
		{"nested", "store:\n  redis:\n    urll: redis://x\n",
			[]string{`:3:5: store.redis.urll: unknown key; store.redis takes url, prefix, max_followers, coalesce`}},
		{"all of them", "log:\n  lvl: debug\nstore:\n  dir: x\n",
			[]string{`:2:3: log.lvl: unknown key`, `:4:3: store.dir: unknown key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, err := Load(path, nil, Overrides{})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), path+w) {
					t.Errorf("error %q does not contain %q", err, path+w)
				}
			}
			if vigil.ErrorCode(err) != vigil.Invalid {
				t.Errorf("code %q, want invalid", vigil.ErrorCode(err))
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"duration as a number", "server:\n  heartbeat: 15\n", "line 2: cannot unmarshal !!int `15` into time.Duration"},
		{"bad duration", "server:\n  heartbeat: soon\n", "line 2: cannot unmarshal !!str `soon` into time.Duration"},
		{"int as text", "store:\n  max_events_per_thread: many\n", "line 2: cannot unmarshal !!str `many` into int"},
		{"section as a scalar", "server: 127.0.0.1:1\n", "line 1: cannot unmarshal !!str `127.0.0...` into config.Server"},
		{"syntax", "server:\n  addr: [\n", "yaml: line 2: did not find expected node content"},
		{"two documents", "log:\n  level: info\n---\nlog:\n  level: debug\n", "want one YAML document, found more"},
		{"valid yaml, invalid value", "log:\n  level: loud\n", `log.level: want one of debug, info, warn, error; got "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file)
			_, err := Load(path, nil, Overrides{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: error %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(tt.name, "invalid value") && !strings.HasPrefix(err.Error(), path+":") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}

	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, Overrides{})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadFileAnchorsAndMerge(t *testing.T) {
	path := writeFile(t, `
base: &base
  level: debug
`)
	if _, err := Load(path, nil, Overrides{}); err == nil || !strings.Contains(err.Error(), "base: unknown key") {
		t.Errorf("unknown anchored section: %v", err)
	}
	path = writeFile(t, `
log:
  <<: {level: debug}
  format: text
store:
  redis: &r {prefix: a}
`)
	c, err := Load(path, nil, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" || c.Log.Format != "text" || c.Store.Redis.Prefix != "a" {
		t.Errorf("got %+v", c)
	}
	path = writeFile(t, "log:\n  <<: {colour: red}\n")
	if _, err := Load(path, nil, Overrides{}); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown key in a merge: %v", err)
	}
}

func TestLoadEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"bad int", []string{"VIGIL_STORE_MAX_EVENTS_PER_THREAD=lots"},
			[]string{`VIGIL_STORE_MAX_EVENTS_PER_THREAD: want an integer for store.max_events_per_thread, got "lots"`}},
		{"bad duration", []string{"VIGIL_SERVER_HEARTBEAT=15"},
			[]string{`VIGIL_SERVER_HEARTBEAT: want a duration such as 15s or 1m30s for server.heartbeat, got "15"`}},
		{"unknown key in a known section", []string{"VIGIL_SERVER_ADR=x", "VIGIL_STORE_REDIS_URLL=x"},
			[]string{
				"VIGIL_SERVER_ADR: unknown variable; server has no such key",
				"VIGIL_STORE_REDIS_URLL: unknown variable; store has no such key",
			}},
		{"all of them, sorted unknowns after values", []string{
			"VIGIL_STORE_REDIS_MAX_FOLLOWERS=1k", "VIGIL_LOG_COLOR=1", "VIGIL_SERVER_SHUTDOWN_TIMEOUT=10",
		}, []string{
			`VIGIL_SERVER_SHUTDOWN_TIMEOUT: want a duration such as 15s or 1m30s for server.shutdown_timeout, got "10"`,
			`VIGIL_STORE_REDIS_MAX_FOLLOWERS: want an integer for store.redis.max_followers, got "1k"`,
			"VIGIL_LOG_COLOR: unknown variable; log has no such key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", tt.env, Overrides{})
			if got := messages(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Load:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestEnvKinds(t *testing.T) {
	type inner struct {
		List  []string      `yaml:"list"`
		Flag  bool          `yaml:"flag"`
		Count uint16        `yaml:"count"`
		Wait  time.Duration `yaml:"wait"`
	}
	type section struct {
		Name  string `yaml:"name,omitempty"`
		N     int64
		Inner inner  `yaml:"inner"`
		Skip  string `yaml:"-"`
	}
	type root struct {
		Sec section `yaml:"sec"`
	}
	var r root
	err := setFromEnv(reflect.ValueOf(&r).Elem(), []string{
		"VIGIL_SEC_NAME=a b", "VIGIL_SEC_N=-7",
		"VIGIL_SEC_INNER_LIST= a, b ,,c ", "VIGIL_SEC_INNER_FLAG=true",
		"VIGIL_SEC_INNER_COUNT=65535", "VIGIL_SEC_INNER_WAIT=1m30s",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := root{section{Name: "a b", N: -7, Inner: inner{List: []string{"a", "b", "c"}, Flag: true, Count: 65535, Wait: 90 * time.Second}}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v\nwant %+v", r, want)
	}

	err = setFromEnv(reflect.ValueOf(&r).Elem(), []string{
		"VIGIL_SEC_INNER_FLAG=maybe", "VIGIL_SEC_INNER_COUNT=-1", "VIGIL_SEC_INNER_LIST=", "VIGIL_SEC_SKIP=x",
	})
	want2 := []string{
		`VIGIL_SEC_INNER_FLAG: want true or false for sec.inner.flag, got "maybe"`,
		`VIGIL_SEC_INNER_COUNT: want a non-negative integer for sec.inner.count, got "-1"`,
		"VIGIL_SEC_SKIP: unknown variable; sec has no such key",
	}
	if got := messages(t, err); !slices.Equal(got, want2) {
		t.Errorf("got  %q\nwant %q", got, want2)
	}
	if r.Sec.Inner.List != nil {
		t.Errorf("an empty list variable gave %q, want none", r.Sec.Inner.List)
	}
}

// TestEveryKeyHasAVariable sets every key of Config from the environment, so
// that a field of a type the environment cannot express fails here, and
// checks that no two keys share a variable.
func TestEveryKeyHasAVariable(t *testing.T) {
	seen := map[string]string{}
	var env []string
	eachLeaf(reflect.ValueOf(Config{}), "", func(path string, _ reflect.StructField, v reflect.Value) {
		name := envName(path)
		if other, ok := seen[name]; ok {
			t.Errorf("%s and %s share the variable %s", other, path, name)
		}
		seen[name] = path
		val := map[reflect.Kind]string{reflect.String: "x", reflect.Int: "1", reflect.Bool: "true", reflect.Int64: "1s"}[v.Kind()]
		env = append(env, name+"="+val)
	})
	var c Config
	if err := c.loadEnv(env); err != nil {
		t.Fatal(err)
	}
	if want := []string{"VIGIL_SERVER_ADDR", "VIGIL_STORE_REDIS_URL", "VIGIL_STORE_MAX_EVENTS_PER_THREAD"}; !allIn(want, seen) {
		t.Errorf("variables %v, want among them %v", seen, want)
	}
}

// TestQuotaLimits reads per-tenant plans from the environment, as an
// operator sets them, and checks that an override replaces only the keys
// it names.
func TestQuotaLimits(t *testing.T) {
	c, err := Load("", []string{
		"VIGIL_QUOTAS_MAX_ACTIVE_TASKS=3",
		"VIGIL_QUOTAS_TENANTS=acme requests_per_minute=1200 max_active_tasks=50, trial max_run_duration=2m tool_calls_per_minute=0",
	}, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Quotas.Limits()
	if err != nil {
		t.Fatal(err)
	}
	def := Plan{RequestsPerMinute: 600, ToolCallsPerMinute: 120, MaxActiveTasks: 3, MaxRunDuration: 30 * time.Minute}
	for tenant, want := range map[string]Plan{
		"acme":    {RequestsPerMinute: 1200, ToolCallsPerMinute: 120, MaxActiveTasks: 50, MaxRunDuration: 30 * time.Minute},
		"trial":   {RequestsPerMinute: 600, ToolCallsPerMinute: 0, MaxActiveTasks: 3, MaxRunDuration: 2 * time.Minute},
		"default": def,
		"globex":  def,
	} {
		if got := l.For(tenant); got != want {
			t.Errorf("For(%q) = %+v, want %+v", tenant, got, want)
		}
	}

	_, err = Load("", []string{"VIGIL_QUOTAS_TENANTS=acme requests_per_minute=many"}, Overrides{})
	want := `quotas.tenants: entry 1 ("acme requests_per_minute=many"): requests_per_minute: want from 0 (no limit) to 1000000, got "many"`
	if got := messages(t, err); !slices.Equal(got, []string{want}) {
		t.Errorf("Load with a bad override: %q, want %q", got, want)
	}
	q := Default().Quotas
	q.Tenants = []string{"acme max_active_tasks=1", "acme max_active_tasks=2"}
	if _, err := q.Limits(); vigil.ErrorCode(err) != vigil.Invalid || !strings.Contains(err.Error(), "tenant acme has entry 1 already") {
		t.Errorf("Limits with a tenant twice: %v", err)
	}
}

func allIn(names []string, m map[string]string) bool {
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return false
		}
	}
	return true
}

func TestOverridesRegister(t *testing.T) {
	tests := []struct {
		args []string
		want Overrides
	}{
		{nil, Overrides{}},
		{[]string{"--addr", "127.0.0.1:9"}, Overrides{Addr: ptr("127.0.0.1:9")}},
		{[]string{"--data=/d", "--redis", "redis://r:6379/0"}, Overrides{DataDir: ptr("/d"), RedisURL: ptr("redis://r:6379/0")}},
		{[]string{"--addr="}, Overrides{Addr: ptr("")}}, // set, though empty
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("vigil", flag.ContinueOnError)
		var o Overrides
		o.Register(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o, tt.want) {
			t.Errorf("%q: got %s, want %s", tt.args, show(o), show(tt.want))
		}
	}
}

func show(o Overrides) string {
	s := func(p *string) string {
		if p == nil {
			return "nil"
		}
		return "&" + *p
	}
	return "{" + s(o.Addr) + " " + s(o.DataDir) + " " + s(o.RedisURL) + "}"
}

func TestRedacted(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", ""},
		{"redis://cache:6379/0", "redis://cache:6379/0"},
		{"redis://user:hunter2@cache:6379/0", "redis://user:xxxxx@cache:6379/0"},
		{"rediss://:hunter2@cache:6380", "rediss://:xxxxx@cache:6380"},
		{"redis://u:hunter2@cache:port/0", "xxxxx"}, // does not parse
	}
	for _, tt := range tests {
		c := Default()
		c.Store.Redis.URL = tt.url
		r := c.Redacted()
		if r.Store.Redis.URL != tt.want {
			t.Errorf("Redacted(%q) = %q, want %q", tt.url, r.Store.Redis.URL, tt.want)
		}
		if c.Store.Redis.URL != tt.url {
			t.Errorf("Redacted changed its receiver: %q", c.Store.Redis.URL)
		}
		r.Store.Redis.URL = c.Store.Redis.URL
		if !reflect.DeepEqual(r, c) {
			t.Errorf("Redacted changed more than the secret: %+v", r)
		}
	}
}

// TestSweepAndToolKeys sets the scheduler's sweep and the domain tools'
// URLs from a file and from the environment, as an operator does, and
// checks that bad values are refused naming the key or the variable.
func TestSweepAndToolKeys(t *testing.T) {
	path := writeFile(t, `
scheduler:
  sweep_every: 2m
  sweep_after: 90s
tools:
  allow: [10.0.0.5]
  weather:
    geocoding_url: http://10.0.0.5:8080/geo
    forecast_url: http://10.0.0.5:8080/forecast
  price:
    url: https://quotes.corp.example
  news:
    url: https://news.corp.example/rss
`)
	c, err := Load(path, nil, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	wantTools := Tools{
		Allow:   []string{"10.0.0.5"},
		Weather: WeatherTool{GeocodingURL: "http://10.0.0.5:8080/geo", ForecastURL: "http://10.0.0.5:8080/forecast"},
		Price:   PriceTool{URL: "https://quotes.corp.example"},
		News:    NewsTool{URL: "https://news.corp.example/rss"},
	}
	if c.Scheduler.SweepEvery != 2*time.Minute || c.Scheduler.SweepAfter != 90*time.Second || !reflect.DeepEqual(c.Tools, wantTools) {
		t.Errorf("from the file: scheduler %+v, tools %+v", c.Scheduler, c.Tools)
	}

	c, err = Load(path, []string{
		"VIGIL_SCHEDULER_SWEEP_EVERY=10m", "VIGIL_SCHEDULER_SWEEP_AFTER=3m",
		"VIGIL_TOOLS_WEATHER_GEOCODING_URL=https://geo.mirror.example",
		"VIGIL_TOOLS_WEATHER_FORECAST_URL=https://forecast.mirror.example",
		"VIGIL_TOOLS_PRICE_URL=https://quotes.mirror.example/yahoo",
		"VIGIL_TOOLS_NEWS_URL=https://news.mirror.example/rss",
	}, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	wantTools = Tools{
		Allow:   []string{"10.0.0.5"},
		Weather: WeatherTool{GeocodingURL: "https://geo.mirror.example", ForecastURL: "https://forecast.mirror.example"},
		Price:   PriceTool{URL: "https://quotes.mirror.example/yahoo"},
		News:    NewsTool{URL: "https://news.mirror.example/rss"},
	}
	if c.Scheduler.SweepEvery != 10*time.Minute || c.Scheduler.SweepAfter != 3*time.Minute || !reflect.DeepEqual(c.Tools, wantTools) {
		t.Errorf("env over the file: scheduler %+v, tools %+v", c.Scheduler, c.Tools)
	}

	for _, tt := range []struct {
		name string
		file string
		env  []string
		want []string
	}{
		{"not a duration", "", []string{"VIGIL_SCHEDULER_SWEEP_EVERY=5"},
			[]string{`VIGIL_SCHEDULER_SWEEP_EVERY: want a duration such as 15s or 1m30s for scheduler.sweep_every, got "5"`}},
		{"too short, from the environment", "", []string{"VIGIL_SCHEDULER_SWEEP_AFTER=10ms", "VIGIL_TOOLS_PRICE_URL=quotes.example"}, []string{
			`scheduler.sweep_after: want at least 1s (1s, and at least scheduler.tick): a shorter wait races the enqueueing of new runs; got 10ms`,
			`tools.price.url: want an absolute http or https URL, got "quotes.example"`,
		}},
		{"too short, from the file", "scheduler:\n  tick: 5s\n  sweep_every: 1s\ntools:\n  weather:\n    forecast_url: \"\"\n", nil, []string{
			`scheduler.sweep_every: want at least scheduler.tick (5s), since sweeps start on ticks; got 1s`,
			`tools.weather.forecast_url: want an absolute http or https URL, got ""`,
		}},
		{"unknown key", "", []string{"VIGIL_TOOLS_WEATHER_URL=https://x.example"},
			[]string{"VIGIL_TOOLS_WEATHER_URL: unknown variable; tools has no such key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			_, err := Load(path, tt.env, Overrides{})
			if got := messages(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Load:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

// TestRedactedToolURLs: a password in a domain tool's URL (a mirror
// behind basic authentication) is masked when the config is logged.
func TestRedactedToolURLs(t *testing.T) {
	c := Default()
	c.Tools.Weather.GeocodingURL = "https://geo:hunter2@mirror.example/geo"
	c.Tools.News.URL = "https://feeds:hunter2@news.example/rss"
	r := c.Redacted()
	if r.Tools.Weather.GeocodingURL != "https://geo:xxxxx@mirror.example/geo" || r.Tools.News.URL != "https://feeds:xxxxx@news.example/rss" ||
		r.Tools.Weather.ForecastURL != c.Tools.Weather.ForecastURL || r.Tools.Price.URL != c.Tools.Price.URL {
		t.Errorf("Redacted tools = %+v", r.Tools)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	if strings.Contains(buf.String(), "hunter2") || !strings.Contains(buf.String(), `"price":{"url":"https://query1.finance.yahoo.com"}`) {
		t.Errorf("log %s", buf.String())
	}
}

func TestRedactedAuth(t *testing.T) {
	c := Default()
	c.Auth.StreamSecret = "c3RyZWFtIHNlY3JldA=="
	c.Auth.JWT.HS256Secret = "hunter2hunter2hunter2hunter2hunter2"
	c.Auth.JWT.JWKSURL = "https://idp.example.com/jwks"
	r := c.Redacted()
	if r.Auth.StreamSecret != "xxxxx" || r.Auth.JWT.HS256Secret != "xxxxx" || r.Auth.JWT.JWKSURL != c.Auth.JWT.JWKSURL {
		t.Errorf("Redacted auth = %+v", r.Auth)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	if strings.Contains(buf.String(), "hunter2") || strings.Contains(buf.String(), "c3RyZWFt") {
		t.Errorf("auth secret logged: %s", buf.String())
	}
}

func TestLogValue(t *testing.T) {
	c := Default()
	c.Store.Redis.URL = "redis://user:hunter2@cache:6379/0"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("password logged: %s", out)
	}
	for _, want := range []string{
		`"server":{"addr":"127.0.0.1:7070","heartbeat":"15s","shutdown_timeout":"10s","base_url":""}`,
		`"url":"redis://user:xxxxx@cache:6379/0"`,
		`"max_events_per_thread":100000`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log %s\nlacks %s", out, want)
		}
	}
}

func TestLogHandler(t *testing.T) {
	tests := []struct {
		log  Log
		want string
	}{
		{Log{Level: "debug", Format: "text"}, "level=DEBUG msg=hello"},
		{Log{Level: "info", Format: "json"}, `"level":"INFO","msg":"hello"`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		l := slog.New(tt.log.NewHandler(&buf))
		l.Debug("hello")
		l.Info("hello")
		if !strings.Contains(buf.String(), tt.want) {
			t.Errorf("%+v: wrote %q, want %q", tt.log, buf.String(), tt.want)
		}
		if tt.log.Level == "info" && strings.Contains(buf.String(), "DEBUG") {
			t.Errorf("%+v: logged below its level: %q", tt.log, buf.String())
		}
	}
}

// TestShippedFiles loads dev.yaml and prod.yaml as shipped: both parse and
// validate with no environment, and both spell out every key of Config, so
// they keep one shape as sections are added.
func TestShippedFiles(t *testing.T) {
	want := leafPaths()
	slices.Sort(want)
	for _, name := range []string{"dev.yaml", "prod.yaml"} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(name, nil, Overrides{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			got := yamlLeaves(doc.Content[0], "")
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("keys:\n got  %q\n want %q", got, want)
			}
			switch name {
			case "dev.yaml":
				if c.Store.Driver != DriverBolt || c.Log.Format != "text" || c.Log.Level != "debug" || c.Auth.Mode != AuthNone {
					t.Errorf("dev: got %+v", c)
				}
			case "prod.yaml":
				if c.Store.Driver != DriverRedis || c.Log.Format != "json" || c.Log.Level != "info" || c.Auth.Mode != AuthKeys {
					t.Errorf("prod: got %+v", c)
				}
				// The secret comes from the environment.
				c, err := Load(name, []string{"VIGIL_STORE_REDIS_URL=rediss://vigil:s3cret@redis.internal:6380/1"}, Overrides{})
				if err != nil || c.Store.Redis.URL != "rediss://vigil:s3cret@redis.internal:6380/1" {
					t.Errorf("prod with VIGIL_STORE_REDIS_URL: %+v, %v", c, err)
				}
			}
		})
	}
}

// yamlLeaves returns the dotted paths of the leaves of the mapping n, in
// file order.
func yamlLeaves(n *yaml.Node, prefix string) []string {
	var ps []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		path := n.Content[i].Value
		if prefix != "" {
			path = prefix + "." + path
		}
		if v := n.Content[i+1]; v.Kind == yaml.MappingNode {
			ps = append(ps, yamlLeaves(v, path)...)
		} else {
			ps = append(ps, path)
		}
	}
	return ps
}
