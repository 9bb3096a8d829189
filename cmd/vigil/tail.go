package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/r3labs/sse/v2"
	backoff "gopkg.in/cenkalti/backoff.v1"

	"github.com/vigilhq/vigil/streams"
)

// runTail is `vigil tail THREAD [--after ID] [--server URL] [--json]`: it
// follows a thread's events, one per line, and after a drop reconnects with
// the last id it printed, so nothing is printed twice or skipped. When the
// server authenticates, the API key or JWT comes from $VIGIL_TOKEN and goes
// in the Authorization header: never in a flag, where ps and shell
// history would show it, nor in the URL, which the server refuses.
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return tail(ctx, args, os.Getenv("VIGIL_TOKEN"), stdout, stderr)
}

func tail(ctx context.Context, args []string, token string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	after := fs.String("after", "", "resume strictly after this event `id`")
	server := fs.String("server", "http://127.0.0.1:7070", "server base `URL`")
	raw := fs.Bool("json", false, "print each event's envelope as one JSON line")
	thread, err := parseWithArg(fs, args, "THREAD")
	if err != nil {
		return err
	}
	if _, err := streams.ParseID(*after); err != nil {
		return fmt.Errorf("--after: %v", err)
	}
	base, err := url.Parse(*server)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return fmt.Errorf("--server: want an http or https URL, got %q", *server)
	}

	c := sse.NewClient(strings.TrimRight(*server, "/") + "/v1/threads/" + url.PathEscape(thread) + "/events")
	if *after != "" {
		c.LastEventID.Store([]byte(*after))
	}
	if token != "" {
		c.Headers["Authorization"] = "Bearer " + token
	}
	// A 4xx will not get better by retrying: stop with the server's message.
	c.ResponseValidator = func(_ *sse.Client, resp *http.Response) error {
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		defer resp.Body.Close()
		err := fmt.Errorf("%s: %s", resp.Status, serverMessage(resp.Body))
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return &backoff.PermanentError{Err: err}
		}
		return err
	}
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = 200 * time.Millisecond
	retry.MaxInterval = 5 * time.Second
	retry.MaxElapsedTime = 0 // keep trying until interrupted
	c.ReconnectStrategy = backoff.WithContext(retry, ctx)
	c.ReconnectNotify = func(err error, wait time.Duration) {
		fmt.Fprintf(stderr, "vigil tail: %v; reconnecting in %s\n", err, wait.Round(time.Millisecond))
	}

	print := func(msg *sse.Event) {
		if len(msg.Data) == 0 {
			return
		}
		if *raw {
			fmt.Fprintf(stdout, "%s\n", msg.Data)
			return
		}
		fmt.Fprintln(stdout, formatEvent(msg.Data))
	}
	// The client returns nil when the server ends the stream cleanly (as it
	// does for a subscriber that fell behind); it keeps LastEventID, so
	// subscribing again resumes where it stopped.
	for ctx.Err() == nil {
		err := c.SubscribeRawWithContext(ctx, print)
		if ctx.Err() != nil {
			return nil
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return perm.Err
		}
		if err != nil {
			return err
		}
		last, _ := c.LastEventID.Load().([]byte)
		fmt.Fprintf(stderr, "vigil tail: stream ended; resuming after %s\n", last)
	}
	return nil
}

// formatEvent renders an envelope for a terminal: time, id, type, payload.
func formatEvent(data []byte) string {
	var e streams.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return string(data)
	}
	var compact bytes.Buffer
	if json.Compact(&compact, e.Data) != nil {
		compact.Write(e.Data)
	}
	return fmt.Sprintf("%s  %-15s %-13s %s", e.TS.Local().Format("15:04:05.000"), e.ID, e.Type, compact.String())
}

// serverMessage extracts the message of a Vigil JSON error body.
func serverMessage(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	var body struct {
		Error struct{ Message string } `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
		return body.Error.Message
	}
	return strings.TrimSpace(string(b))
}

// parseWithArg parses flags that may come before or after one required
// positional argument named name, and returns that argument.
func parseWithArg(fs *flag.FlagSet, args []string, name string) (string, error) {
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(fs.Output(), "%s: missing %s\n", fs.Name(), name)
		fs.Usage()
		return "", errUsage
	}
	arg := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return "", errUsage
	}
	return arg, nil
}
