// Command vigil is the Vigil server and its tools, one binary with several
// roles:
//
//	vigil serve   HTTP API, SSE and MCP, on the embedded store by default
//	vigil worker  execute queued runs only, against Redis; run as many as needed
//	vigil tail    follow a thread's events from a terminal, resuming after drops
//	vigil keys    create, list and revoke API keys in the configured store
//	vigil plan    run the offline planner on one request and print the plan
//	vigil mcp     serve MCP over stdio for local clients (Claude Desktop)
//	vigil bench   run a load workload (streams, burst, mcp) and report its figures
//
// This package is wiring only: it parses flags and config and connects the
// parts; the parts live in their own packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: vigil <command> [flags]

commands:
  serve   start the server (embedded store at 127.0.0.1:7070 unless configured)
  worker  execute task runs against Redis, apart from the server: vigil worker --redis URL
  tail    follow a thread's events: vigil tail THREAD [--after ID] [--server URL]
  keys    manage API keys: vigil keys create --tenant T --role R [--user U] (also list, revoke)
  plan    plan one request offline: vigil plan --tz ZONE --now RFC3339 --json "TEXT"
  mcp     serve MCP on stdin/stdout for local clients: vigil mcp [--config FILE] [--data DIR] [--redis URL]
  bench   run a load workload and report figures: vigil bench streams|burst|mcp [flags]

Run 'vigil <command> -h' for a command's flags.
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, rest, stdout, stderr)
	case "worker":
		err = runWorker(ctx, rest, stdout, stderr)
	case "keys":
		err = runKeys(ctx, rest, stdout, stderr)
	case "tail":
		err = runTail(ctx, rest, stdout, stderr)
	case "plan":
		err = runPlan(ctx, rest, stdout, stderr)
	case "mcp":
		err = runMCP(ctx, rest, os.Stdin, stdout, stderr)
	case "bench":
		err = runBench(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "vigil %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks an error already reported by a flag set.
var errUsage = errors.New("usage error")

// parseFlags parses args with fs, mapping its errors to errUsage (the flag
// package has printed them). Positional arguments stay in fs.Args().
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// parseOnlyFlags is parseFlags for commands that take no positional
// argument: a stray one is a usage error, not silently ignored.
func parseOnlyFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}
