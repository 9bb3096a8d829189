package config

import (
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Config is the whole configuration of a Vigil process. Each section is a
// struct field whose yaml tag is the section's key; adding a section (tasks,
// agent, auth, …) is adding a field here, a case or two to Validate, and the
// same keys to dev.yaml and prod.yaml. Environment variables, unknown-key
// checks, redaction and logging follow from the tags.
type Config struct {
	Server Server `yaml:"server"` // the HTTP server (vigil serve)
	Log    Log    `yaml:"log"`    // the structured log of every role
	Store  Store  `yaml:"store"`  // the storage backend of every role
	Memory Memory `yaml:"memory"` // the agents' memory
	Auth   Auth   `yaml:"auth"`   // who may call the server, and how they prove it

	Workers   Workers   `yaml:"workers"`   // the task workers: in vigil serve, or vigil worker
	Scheduler Scheduler `yaml:"scheduler"` // turns due tasks into queued runs
	Retry     Retry     `yaml:"retry"`     // how failed runs are tried again
	Tools     Tools     `yaml:"tools"`     // the built-in tools and what outgoing requests may reach
	LLM       LLM       `yaml:"llm"`       // the model of the agents; none: the offline model

	Quotas Quotas `yaml:"quotas"` // what each tenant may use: requests, tool calls, active tasks, run time
}

// Workers configures the task workers: the processes that execute queued
// runs. With the bolt store they run inside vigil serve; with Redis they run
// there too unless Embedded is false, and in any number of vigil worker
// processes.
type Workers struct {
	// Embedded runs workers inside vigil serve. Set it false in Redis mode
	// to keep the API instances free of task work and run vigil worker
	// processes instead. The bolt store needs it true: its file is one
	// process's.
	Embedded bool `yaml:"embedded"`

	// Concurrency is how many runs one process executes at once. Runs
	// mostly wait (on a model, a tool, the store), so the default is
	// generous: 256. More runs at once also share the store's round trips
	// (store.redis.coalesce) and commits (bolt), which makes each cheaper.
	// Lower it for executors that use the CPU, or use Rate to spare a
	// rate-limited model provider.
	Concurrency int `yaml:"concurrency"`

	// TenantConcurrency caps the runs of one tenant executing at once in
	// one process, so that a tenant flooding the queue leaves room for the
	// others; at most Concurrency.
	TenantConcurrency int `yaml:"tenant_concurrency"`

	// Rate caps the runs one process starts per second; 0 means no cap.
	Rate int `yaml:"rate"`

	// Lease is how long a worker holds a run without renewing it: a
	// crashed worker's runs go to another worker after at most this long.
	Lease time.Duration `yaml:"lease"`

	// StopTimeout bounds a graceful stop: running runs finish or checkpoint
	// within it, then go back to the queue.
	StopTimeout time.Duration `yaml:"stop_timeout"`
}

// Scheduler configures the scheduler, which turns due tasks into queued
// runs. In Redis mode every vigil serve runs one, and a lease in Redis lets
// exactly one of them dispatch at a time.
type Scheduler struct {
	// Enabled runs the scheduler in vigil serve. Turn it off on instances
	// that should only answer requests.
	Enabled bool `yaml:"enabled"`

	// Tick is how often the scheduler looks for due tasks: a run starts at
	// most about one tick after its time.
	Tick time.Duration `yaml:"tick"`

	// Batch is how many due tasks one read takes, highest priority first.
	Batch int `yaml:"batch"`

	// Grace is how late a fire may be before it counts as missed while the
	// server was down, and the task's catch-up policy decides.
	Grace time.Duration `yaml:"grace"`

	// LeaseTTL is how long the dispatching scheduler's lease lasts without
	// renewal: another instance takes over at most this long after the
	// holder dies.
	LeaseTTL time.Duration `yaml:"lease_ttl"`

	// SweepEvery is how often the dispatching scheduler sweeps, to
	// enqueue again the queued runs that lost their queue item and to
	// archive the one-shot tasks whose slot is behind them. On bolt a
	// sweep walks every run and task; on Redis it reads per-tenant
	// indexes of queued runs and of active tasks with a time, which the
	// first sweep builds once with a SCAN of the deployment's keys. A
	// sweep starts on a tick, so it is at least Tick.
	SweepEvery time.Duration `yaml:"sweep_every"`

	// SweepAfter is how long a run must have been queued, without an
	// update, before a sweep enqueues it again. A run is stored, then
	// enqueued a round trip later, and the scheduler's own runs are
	// repaired by its next tick; so it is at least a second and at least
	// Tick, lest sweeps race the runs their creators are still enqueueing.
	SweepAfter time.Duration `yaml:"sweep_after"`
}

// Retry configures the retries of failed runs. Transient errors (a dropped
// connection) are retried at once; temporary ones (a rate limit, a timeout)
// after a backoff; permanent ones (invalid parameters) not at all.
type Retry struct {
	// Transient is how many times a transient error is retried at once.
	Transient int `yaml:"transient"`

	// Backoff is the waits before each retry of a temporary error; their
	// number is how many retries a run gets.
	Backoff []string `yaml:"backoff"`

	// JitterPercent adds up to this percentage of a wait at random, so that
	// runs limited together do not retry together.
	JitterPercent int `yaml:"jitter_percent"`
}

// Tools configures the built-in tools and the guard in front of every
// outgoing request of tools and webhooks.
type Tools struct {
	// Allow lists what http_get, HTTP plugin tools and webhooks may reach
	// although it is not public: addresses ("10.0.0.5"), prefixes
	// ("10.1.0.0/16") and host names ("wiki.corp.example"). Empty: public
	// addresses only, which keeps loopback, private and cloud metadata
	// addresses out of a tool's reach.
	Allow []string `yaml:"allow"`

	// Weather, Price and News say where the built-in domain tools of
	// those names send their requests: the public services by default, or
	// a mirror, a proxy or a test server speaking the same API. A server
	// on a private or loopback address must be in Allow too.
	Weather WeatherTool `yaml:"weather"`
	Price   PriceTool   `yaml:"price"`
	News    NewsTool    `yaml:"news"`
}

// WeatherTool configures the weather tool, which reads Open-Meteo's two
// APIs. Each URL is the base that /v1/search or /v1/forecast is appended
// to. A password in a URL is masked when the config is logged.
type WeatherTool struct {
	// GeocodingURL serves /v1/search, which finds a city.
	GeocodingURL string `yaml:"geocoding_url" secret:"url"`

	// ForecastURL serves /v1/forecast, which gives a place's weather.
	ForecastURL string `yaml:"forecast_url" secret:"url"`
}

// PriceTool configures the price tool.
type PriceTool struct {
	// URL is the base of Yahoo Finance's chart API (or one like it):
	// /v8/finance/chart/{symbol} is appended to it.
	URL string `yaml:"url" secret:"url"`
}

// NewsTool configures the news tool.
type NewsTool struct {
	// URL is the RSS feed of the top stories, and URL/search?q= the feed
	// of a topic, as Google News RSS serves them.
	URL string `yaml:"url" secret:"url"`
}

// LLM configures the model behind the main agent and the task agent. With
// no provider the offline model (rules, English and Chinese) does all the
// work; with one, the offline model is the fallback when it fails.
type LLM struct {
	// Provider is "" (the offline model), openai (any OpenAI-compatible
	// server: OpenAI, DeepSeek, vLLM, llama.cpp, Ollama's /v1), ollama
	// (Ollama's native API) or anthropic.
	Provider string `yaml:"provider"`

	// BaseURL is the API's URL; empty means the provider's public API, or
	// a local Ollama.
	BaseURL string `yaml:"base_url"`

	// Model is the model's name at the provider, such as gpt-4o-mini.
	Model string `yaml:"model"`

	// APIKeyEnv names the environment variable that holds the API key, so
	// that the key itself stays out of configuration.
	APIKeyEnv string `yaml:"api_key_env"`

	// Timeout bounds one model call; past it the offline model answers.
	Timeout time.Duration `yaml:"timeout"`
}

// Server configures the HTTP server of vigil serve: REST, SSE, MCP at /mcp
// and the console.
type Server struct {
	// Addr is the HOST:PORT to listen on. Port 0 picks a free port (tests).
	// An address other than loopback is refused until authentication is
	// configured.
	Addr string `yaml:"addr"`

	// Heartbeat is how often an idle SSE stream gets a comment line, so
	// that proxies and clients do not time it out.
	Heartbeat time.Duration `yaml:"heartbeat"`

	// ShutdownTimeout bounds how long a stopping server waits for open
	// requests and streams to finish.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// BaseURL is the public URL clients reach the server at, when it is not
	// the listen address (behind a proxy); used to build links. Optional.
	BaseURL string `yaml:"base_url"`
}

// Log configures the process's structured log.
type Log struct {
	// Level is the lowest level logged: debug, info, warn or error.
	Level string `yaml:"level"`

	// Format is json (one object a line, for collectors) or text (for
	// people at a terminal).
	Format string `yaml:"format"`
}

// Store configures persistence: threads' events, tasks, runs, tools and
// memory all live in the one backend chosen here.
type Store struct {
	// Driver is bolt (an embedded file, one process) or redis (many
	// instances and workers). Load derives it when it is left empty: redis
	// when Redis.URL is set, else bolt.
	Driver string `yaml:"driver"`

	// DataDir is the directory of the bolt file (DataDir/vigil.db). A
	// relative path is relative to the working directory, not to the
	// config file.
	DataDir string `yaml:"data_dir"`

	// MaxEventsPerThread is how many events a thread keeps; older ones are
	// trimmed. It applies to both backends.
	MaxEventsPerThread int `yaml:"max_events_per_thread"`

	// Redis configures the Redis backend, used when Driver is redis.
	Redis Redis `yaml:"redis"`
}

// Redis configures the Redis backend. Its keys are checked whatever the
// driver, so a typo shows up before the switch to Redis.
type Redis struct {
	// URL is redis://[user:pass@]host:port/db, or rediss:// for TLS. It
	// holds the password, so it is masked when the config is logged.
	URL string `yaml:"url" secret:"url"`

	// Prefix starts every key Vigil writes, so that several deployments
	// (or test runs) can share one Redis.
	Prefix string `yaml:"prefix"`

	// MaxFollowers bounds the backend subscriptions (one blocking stream
	// read per followed thread) a process holds open at once.
	MaxFollowers int `yaml:"max_followers"`

	// Coalesce sends concurrent appends, and the scripts of the workers'
	// run path (reading a run with its task, updating it, and the queue's
	// claims, extensions, acks and releases), down shared pipelines: each
	// call stays atomic, only round trips are shared, and a lone call
	// waits for nothing. It roughly doubles append throughput under load.
	Coalesce bool `yaml:"coalesce"`
}

// Memory configures the agents' memory: the short-term window of a thread
// and the long-term profile of each user, encrypted at rest.
type Memory struct {
	// Key is the base64 of 32 random bytes: the AES-256-GCM key that
	// encrypts long-term profiles. Left empty with the bolt store, a key file
	// data_dir/memory.key is made on first start and used from then on. Left
	// empty with Redis, profiles are off (answered 503): every instance must
	// share one key, so set it (VIGIL_MEMORY_KEY).
	Key string `yaml:"key" secret:"true"`

	// ShortTermTokens is the token budget of a thread's recent turns that
	// the agent hands its model.
	ShortTermTokens int `yaml:"short_term_tokens"`
}

// Auth configures authentication: which credentials requests may carry,
// and how JWTs and stream tokens are checked. Roles and permissions are
// fixed in code (package auth); only credentials are configured.
type Auth struct {
	// Mode is which credentials are accepted: none (no authentication:
	// every request acts as an admin of the default tenant, and the server
	// binds loopback only), keys (API keys, made with `vigil keys create`
	// or POST /v1/keys), jwt (JWTs from an identity provider, see JWT), or
	// keys+jwt (either).
	Mode string `yaml:"mode"`

	// StreamTokenTTL is how long a stream token (the short-lived
	// credential of browsers' EventSource, in ?token=) is valid: from 1s
	// to 1h.
	StreamTokenTTL time.Duration `yaml:"stream_token_ttl"`

	// StreamSecret is the base64 of at least 32 random bytes: the HMAC key
	// of stream tokens. Instances behind one load balancer must share it.
	// Empty: a random key per process, so that a stream token works only
	// on the instance that issued it.
	StreamSecret string `yaml:"stream_secret" secret:"true"`

	// JWT configures the JWTs accepted in modes jwt and keys+jwt.
	JWT JWT `yaml:"jwt"`

	// Scopes are the tool scopes each role's tasks hold (auth/scopes.go):
	// a role's list, when not empty, replaces the role's default.
	Scopes RoleScopes `yaml:"scopes"`
}

// RoleScopes lists, per role, the tool scopes ("read:web", "write:*", "*")
// that the tasks of a principal with the role hold while they run. An
// empty list keeps the role's default: admin and developer "*", member
// "read:*", viewer none. A principal with several roles holds the union.
type RoleScopes struct {
	Admin     []string `yaml:"admin"`
	Developer []string `yaml:"developer"`
	Member    []string `yaml:"member"`
	Viewer    []string `yaml:"viewer"`
}

// Overrides returns the roles whose list is set, by role name, as
// auth.NewScopeTable takes them.
func (r RoleScopes) Overrides() map[string][]string {
	out := map[string][]string{}
	for role, list := range map[string][]string{"admin": r.Admin, "developer": r.Developer, "member": r.Member, "viewer": r.Viewer} {
		if len(list) > 0 {
			out[role] = list
		}
	}
	return out
}

// JWT configures the verification of JWT bearer tokens. Exactly one of
// HS256Secret and JWKSURL is set when JWTs are accepted.
type JWT struct {
	// HS256Secret is the shared secret of HS256 tokens, at least 32
	// bytes. Keep it out of files: VIGIL_AUTH_JWT_HS256_SECRET.
	HS256Secret string `yaml:"hs256_secret" secret:"true"`

	// JWKSURL is the identity provider's JSON Web Key Set (RS256, ES256
	// and their larger siblings): https, or http on loopback only. Keys are
	// cached and fetched again hourly, and when a token names a key id the
	// cache lacks.
	JWKSURL string `yaml:"jwks_url"`

	// Issuer must equal the tokens' iss claim.
	Issuer string `yaml:"issuer"`

	// Audience must be among the tokens' aud claim.
	Audience string `yaml:"audience"`

	// Leeway is the clock skew allowed on exp, nbf and iat: 0 to 5m.
	Leeway time.Duration `yaml:"leeway"`

	// TenantClaim, UserClaim and RolesClaim name the claims holding the
	// principal. A name with dots is followed through nested objects when
	// no top-level claim has it ("realm_access.roles"). Roles are a list of
	// strings or one space- or comma-separated string; roles Vigil does
	// not know (admin, developer, member, viewer) are ignored.
	TenantClaim string `yaml:"tenant_claim"`
	UserClaim   string `yaml:"user_claim"`
	RolesClaim  string `yaml:"roles_claim"`
}

// The values of Auth.Mode.
const (
	AuthNone    = "none"
	AuthKeys    = "keys"
	AuthJWT     = "jwt"
	AuthKeysJWT = "keys+jwt"
)

// AcceptsKeys reports whether Mode accepts API keys.
func (a Auth) AcceptsKeys() bool { return a.Mode == AuthKeys || a.Mode == AuthKeysJWT }

// AcceptsJWT reports whether Mode accepts JWTs.
func (a Auth) AcceptsJWT() bool { return a.Mode == AuthJWT || a.Mode == AuthKeysJWT }

// Default returns the configuration used when there is no file, no
// environment and no flag: an embedded bolt store in ./vigil-data, JSON logs
// at info, and the server on 127.0.0.1:7070. It is valid as it is.
func Default() Config {
	c := defaults()
	c.resolve()
	return c
}

// defaults is Default before derived values are filled in: the first layer
// of Load, in which an empty store.driver still means "not chosen".
func defaults() Config {
	return Config{
		Server: Server{
			Addr:            "127.0.0.1:7070",
			Heartbeat:       15 * time.Second,
			ShutdownTimeout: 10 * time.Second,
		},
		Log: Log{
			Level:  "info",
			Format: "json",
		},
		Store: Store{
			DataDir:            "./vigil-data",
			MaxEventsPerThread: 100_000,
			Redis: Redis{
				Prefix:       "vigil",
				MaxFollowers: 1024,
				Coalesce:     true,
			},
		},
		Memory: Memory{ShortTermTokens: 2000},
		Workers: Workers{
			Embedded:          true,
			Concurrency:       256,
			TenantConcurrency: 4,
			Lease:             30 * time.Second,
			StopTimeout:       10 * time.Second,
		},
		Scheduler: Scheduler{
			Enabled:    true,
			Tick:       500 * time.Millisecond,
			Batch:      1000,
			Grace:      time.Minute,
			LeaseTTL:   15 * time.Second,
			SweepEvery: 5 * time.Minute,
			SweepAfter: time.Minute,
		},
		Retry: Retry{
			Transient:     3,
			Backoff:       []string{"10s", "20s", "40s"},
			JitterPercent: 20,
		},
		Tools: Tools{ // the public services, as toolsregistry names them
			Weather: WeatherTool{GeocodingURL: toolsregistry.DefaultGeocodingURL, ForecastURL: toolsregistry.DefaultWeatherURL},
			Price:   PriceTool{URL: toolsregistry.DefaultPriceURL},
			News:    NewsTool{URL: toolsregistry.DefaultNewsURL},
		},
		LLM: LLM{Timeout: 30 * time.Second},
		Quotas: Quotas{
			RequestsPerMinute:  600,
			ToolCallsPerMinute: 120,
			MaxActiveTasks:     10,
			MaxRunDuration:     30 * time.Minute,
		},
		Auth: Auth{
			Mode:           AuthNone,
			StreamTokenTTL: 5 * time.Minute,
			JWT: JWT{
				Leeway:      30 * time.Second,
				TenantClaim: "tenant",
				UserClaim:   "sub",
				RolesClaim:  "roles",
			},
		},
	}
}

// resolve fills in the values derived from others once every layer is in.
func (c *Config) resolve() {
	if c.Store.Driver == "" {
		c.Store.Driver = DriverBolt
		if c.Store.Redis.URL != "" {
			c.Store.Driver = DriverRedis
		}
	}
}

// The values of Store.Driver.
const (
	DriverBolt  = "bolt"  // the embedded bbolt file: one process, no Redis
	DriverRedis = "redis" // Redis: many serve instances and workers
)

// BoltPath returns the path of the bolt database file inside DataDir.
func (s Store) BoltPath() string { return filepath.Join(s.DataDir, "vigil.db") }

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// SlogLevel returns Level as a slog.Level; info for a level Validate would
// reject.
func (l Log) SlogLevel() slog.Level {
	if lv, ok := levels[l.Level]; ok {
		return lv
	}
	return slog.LevelInfo
}

// NewHandler returns a slog handler writing to w in Format at Level, wrapped
// in vigil.LogHandler so that records logged with a request's context carry
// its trace_id and tenant. A format Validate would reject gives JSON.
func (l Log) NewHandler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "text" {
		return vigil.LogHandler(slog.NewTextHandler(w, opts))
	}
	return vigil.LogHandler(slog.NewJSONHandler(w, opts))
}
