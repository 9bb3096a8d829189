package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store"
)

const keysUsage = `usage: vigil keys <create|list|revoke> [flags]

  create  --tenant T --role R [--role R2] [--user U] [--name N] [--ttl D]
          make an API key; its record goes to the store, the key itself is
          printed once, as the last line of standard output
  list    --tenant T
          the tenant's keys, revoked ones included (no secrets)
  revoke  --tenant T ID
          revoke a key

Every subcommand takes the store flags of vigil serve: --config FILE,
--data DIR, --redis URL. With the embedded store, a running vigil serve
holds the file: use POST /v1/keys instead.
`

// runKeys is `vigil keys`.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errUsage
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "create":
		return runKeysCreate(ctx, rest, stdout, stderr)
	case "list":
		return runKeysList(ctx, rest, stdout, stderr)
	case "revoke":
		return runKeysRevoke(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "vigil keys: unknown subcommand %q\n\n%s", sub, keysUsage)
		return errUsage
	}
}

// keysFlags are the flags every keys subcommand takes: the store's, as
// vigil serve takes them, and the tenant.
type keysFlags struct {
	fs         *flag.FlagSet
	configPath *string
	over       config.Overrides
	tenant     *string
}

func newKeysFlags(name string, stderr io.Writer) *keysFlags {
	f := &keysFlags{fs: flag.NewFlagSet("vigil keys "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.configPath = f.fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	f.over.Register(f.fs)
	f.tenant = f.fs.String("tenant", "", "the `tenant` of the keys (required)")
	return f
}

// open loads the configuration and opens the store it names, as vigil
// serve would, and returns the key service and the audit log over it.
func (f *keysFlags) open(ctx context.Context) (*auth.Keys, *audit.Recorder, func(), error) {
	if *f.tenant == "" {
		fmt.Fprintf(f.fs.Output(), "%s: --tenant is required\n", f.fs.Name())
		return nil, nil, nil, errUsage
	}
	cfg, err := config.Load(*f.configPath, os.Environ(), f.over)
	if err != nil {
		return nil, nil, nil, err
	}
	backend, err := store.Open(ctx, cfg.Store, nil)
	if err != nil {
		if cfg.Store.Driver == config.DriverBolt {
			return nil, nil, nil, fmt.Errorf("%w (a running vigil serve on %s holds the file: stop it, or use POST /v1/keys)", err, cfg.Store.DataDir)
		}
		return nil, nil, nil, err
	}
	return auth.NewKeys(backend, auth.KeysOptions{}), &audit.Recorder{Log: backend}, func() { _ = backend.Close() }, nil
}

// recordKeyChange appends action (key.create, key.revoke) of key id to
// the tenant's audit log, as the REST routes do, with the command as the
// route and the operating system's user as the actor ("cli:alice"). The
// key is changed already: a failure to record is reported, not undone.
func recordKeyChange(ctx context.Context, rec *audit.Recorder, tenant, action, id string, stderr io.Writer) {
	actor := "cli"
	if u := os.Getenv("USER"); u != "" {
		actor += ":" + u
	}
	e := audit.Entry{Actor: actor, Action: action, Target: id, Outcome: audit.Succeeded, Route: "vigil keys " + strings.TrimPrefix(action, "key.")}
	if err := rec.Record(vigil.WithTraceID(ctx, vigil.NewTraceID()), tenant, e); err != nil {
		fmt.Fprintf(stderr, "vigil keys: %s %s done, but not recorded in the audit log: %v\n", action, id, err)
	}
}

// roleFlag collects --role, given once per role or as a comma-separated
// list.
type roleFlag []string

func (r *roleFlag) String() string { return strings.Join(*r, ",") }

func (r *roleFlag) Set(s string) error {
	for role := range strings.SplitSeq(s, ",") {
		if role = strings.TrimSpace(role); role != "" {
			*r = append(*r, role)
		}
	}
	return nil
}

func runKeysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newKeysFlags("create", stderr)
	var roles roleFlag
	f.fs.Var(&roles, "role", "a `role` of the key: "+strings.Join(auth.Roles(), ", ")+" (repeat or separate with commas)")
	user := f.fs.String("user", "", "the `user` the key acts as (default: a user of its own, key_<id>)")
	name := f.fs.String("name", "", "a `label` for people")
	ttl := f.fs.Duration("ttl", 0, "the key expires after `duration` (default: never)")
	if err := parseOnlyFlags(f.fs, args); err != nil {
		return err
	}
	if len(roles) == 0 {
		fmt.Fprintf(stderr, "%s: --role is required (%s)\n", f.fs.Name(), strings.Join(auth.Roles(), ", "))
		return errUsage
	}
	keys, rec, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	spec := auth.KeySpec{Tenant: *f.tenant, User: *user, Roles: roles, Name: *name}
	if *ttl != 0 {
		spec.ExpiresAt = time.Now().Add(*ttl)
	}
	raw, k, err := keys.Create(ctx, spec)
	if err != nil {
		return err
	}
	recordKeyChange(ctx, rec, k.Tenant, "key.create", k.ID, stderr)
	expires := "never"
	if !k.ExpiresAt.IsZero() {
		expires = k.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "# id:      %s\n# tenant:  %s\n# user:    %s\n# roles:   %s\n# expires: %s\n",
		k.ID, k.Tenant, k.User, strings.Join(k.Roles, ", "), expires)
	fmt.Fprintf(stdout, "# The key is shown this once; only its hash is stored. Send it as Authorization: Bearer <key>.\n%s\n", raw)
	return nil
}

func runKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newKeysFlags("list", stderr)
	if err := parseOnlyFlags(f.fs, args); err != nil {
		return err
	}
	keys, _, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	list, err := keys.List(ctx, *f.tenant)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tROLES\tNAME\tCREATED\tSTATE")
	for _, k := range list {
		state := "active"
		switch {
		case k.Revoked():
			state = "revoked " + k.RevokedAt.Format(time.RFC3339)
		case k.Expired(time.Now()):
			state = "expired " + k.ExpiresAt.Format(time.RFC3339)
		case !k.ExpiresAt.IsZero():
			state = "expires " + k.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.User, strings.Join(k.Roles, ","), k.Name, k.CreatedAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

func runKeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newKeysFlags("revoke", stderr)
	// The ID may come before flags as well as after them.
	var ids []string
	for rest := args; ; {
		if err := parseFlags(f.fs, rest); err != nil {
			return err
		}
		if f.fs.NArg() == 0 {
			break
		}
		ids, rest = append(ids, f.fs.Arg(0)), f.fs.Args()[1:]
	}
	if len(ids) != 1 {
		fmt.Fprintf(stderr, "%s: want one key ID\n", f.fs.Name())
		return errUsage
	}
	keys, rec, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	id := ids[0]
	if err := keys.Revoke(ctx, *f.tenant, id); err != nil {
		return err
	}
	recordKeyChange(ctx, rec, *f.tenant, "key.revoke", id, stderr)
	fmt.Fprintf(stdout, "revoked %s\n", id)
	return nil
}
