package toolsregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	invopop "github.com/invopop/jsonschema"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// BuiltinOptions configure the built-in tools. The zero value means the
// defaults given for each field.
type BuiltinOptions struct {
	// Guard configures http_get's SSRF guard; its zero value refuses every
	// address that is not public.
	Guard GuardOptions
	// MaxBody caps the bytes http_get reads of a body; zero means 1 MiB.
	MaxBody int64
	// HTTPTimeout bounds one http_get, redirects included; zero means 15
	// seconds.
	HTTPTimeout time.Duration
	// Now is time_now's clock; nil means time.Now.
	Now func() time.Time
	// Location is time_now's zone when the call names none; nil means UTC.
	Location *time.Location
	// UserAgent is sent by http_get and the domain tools; empty means
	// "Vigil/1 (+tools)".
	UserAgent string
	// GeocodingURL and WeatherURL are the servers of the Open-Meteo
	// geocoding and forecast APIs the weather tool reads; empty means
	// DefaultGeocodingURL and DefaultWeatherURL.
	GeocodingURL, WeatherURL string
	// PriceURL is the server of the Yahoo Finance chart API the price tool
	// reads; empty means DefaultPriceURL.
	PriceURL string
	// NewsURL is the RSS feed the news tool reads; empty means
	// DefaultNewsURL.
	NewsURL string
	// APITimeout bounds one call of a domain tool (weather, price, news),
	// all its requests included; zero means 10 seconds.
	APITimeout time.Duration
}

// Builtins returns the built-in tools, all Global and at version 1, for
// Registry.RegisterAll:
//
//   - http_get (scope read:web) fetches a URL through an SSRF Guard and
//     returns its status, content type and body text (capped, with a
//     truncated flag);
//   - time_now tells the time in a zone;
//   - calculate evaluates an arithmetic expression;
//   - render_table turns columns and rows into a table part;
//   - render_chart draws a bar or line chart as a PNG image part;
//   - weather (scope read:web) gives a city's weather on a day from
//     Open-Meteo;
//   - price (scope read:web) quotes a stock, index, commodity, currency
//     or crypto currency with its change since the previous close;
//   - news (scope read:web) lists the headlines of a topic from an RSS
//     feed.
//
// The domain tools (weather, price, news) reach their services through the
// same Guard as http_get, so that pointing them at a private address needs
// Guard.Allow.
//
// Their schemas are generated from the Go structs of their arguments and
// results (HTTPGetArgs, HTTPGetResult, …), as slot schemas are.
func Builtins(opts BuiltinOptions) ([]Definition, error) {
	guard, err := NewGuard(opts.Guard)
	if err != nil {
		return nil, fmt.Errorf("toolsregistry: http_get guard: %w", err)
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.HTTPTimeout <= 0 {
		opts.HTTPTimeout = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "Vigil/1 (+tools)"
	}
	hg := &httpGet{client: guard.Client(opts.HTTPTimeout), maxBody: opts.MaxBody, timeout: opts.HTTPTimeout, agent: opts.UserAgent}
	domain, err := domainTools(guard, opts)
	if err != nil {
		return nil, err
	}
	return append([]Definition{
		typed(Tool{
			Name: "http_get", Version: 1, Scopes: []string{"read:web"},
			Description: "Fetch a public web page or API with HTTP GET and return its status, content type and body as text " +
				"(binary bodies are left out; long bodies are cut off and flagged truncated). Private and internal addresses are refused.",
			// A little above the client's own limit, so that a slow site is
			// reported by the client as the site's fault, not as the tool's.
			Timeout: opts.HTTPTimeout + 2*time.Second,
		}, hg.call),
		typed(Tool{
			Name: "time_now", Version: 1,
			Description: "Tell the current date and time in a time zone (IANA name such as Asia/Shanghai or Europe/Paris).",
			Timeout:     time.Second,
		}, func(_ context.Context, in TimeNowArgs) (TimeNowResult, []streams.Payload, error) {
			return timeNow(opts.Now(), opts.Location, in)
		}),
		typed(Tool{
			Name: "calculate", Version: 1,
			Description: "Evaluate an arithmetic expression: numbers, + - * / % ** and parentheses, " +
				"and the functions abs, ceil, floor, round, min, max, sqrt.",
			Timeout: time.Second,
		}, calculate),
		typed(Tool{
			Name: "render_table", Version: 1,
			Description: "Show the user a table: column headings and rows with one cell per column. Returns a Markdown rendering too.",
			Timeout:     time.Second,
		}, renderTable),
		typed(Tool{
			Name: "render_chart", Version: 1,
			Description: "Draw a bar or line chart of labelled values as a PNG image shown to the user.",
			Timeout:     10 * time.Second,
		}, renderChartTool),
	}, domain...), nil
}

// typed makes a Definition of a Go function: the schemas come from In and
// Out, the handler decodes the arguments into In and encodes the Out.
func typed[In, Out any](t Tool, fn func(context.Context, In) (Out, []streams.Payload, error)) Definition {
	t.InputSchema = schemaFor[In]()
	t.OutputSchema = schemaFor[Out]()
	return Definition{Tool: t, Handler: HandlerFunc(func(ctx context.Context, args json.RawMessage) (Output, error) {
		var in In
		if err := json.Unmarshal(args, &in); err != nil {
			var terr *json.UnmarshalTypeError
			if errors.As(err, &terr) && terr.Field != "" {
				return Output{}, vigil.FieldError(terr.Field, "must be a %s", terr.Type)
			}
			return Output{}, vigil.Errorf(vigil.Invalid, "cannot read the arguments: %v", err)
		}
		out, parts, err := fn(ctx, in)
		if err != nil {
			return Output{}, err
		}
		v, err := json.Marshal(out)
		if err != nil {
			return Output{}, fmt.Errorf("encode result: %w", err)
		}
		return Output{Value: v, Parts: parts}, nil
	})}
}

// schemaFor reflects T into a JSON schema with invopop/jsonschema: fields
// without omitempty are required, unknown properties refused.
func schemaFor[T any]() json.RawMessage {
	r := &invopop.Reflector{DoNotReference: true, Anonymous: true}
	s := r.ReflectFromType(reflect.TypeFor[T]())
	b, err := json.Marshal(s)
	if err != nil {
		panic("toolsregistry: schema of " + reflect.TypeFor[T]().String() + ": " + err.Error())
	}
	return b
}

// HTTPGetArgs are the arguments of http_get.
type HTTPGetArgs struct {
	URL string `json:"url" jsonschema:"format=uri,pattern=^https?://,maxLength=2048" jsonschema_description:"The absolute http or https URL to fetch."`
}

// HTTPGetResult is the result of http_get.
type HTTPGetResult struct {
	URL         string `json:"url" jsonschema_description:"The URL that answered, after redirects."`
	Status      int    `json:"status" jsonschema_description:"The HTTP status code."`
	ContentType string `json:"content_type" jsonschema_description:"The media type of the body, such as text/html."`
	Body        string `json:"body" jsonschema_description:"The body as text; empty for a binary body."`
	Binary      bool   `json:"binary" jsonschema_description:"Whether the body is binary and was left out."`
	Truncated   bool   `json:"truncated" jsonschema_description:"Whether the body was cut off at the size limit."`
	Bytes       int    `json:"bytes" jsonschema_description:"How many bytes of the body were read."`
}

type httpGet struct {
	client  *http.Client
	maxBody int64
	timeout time.Duration
	agent   string
}

// call fetches in.URL. Whatever goes wrong on the way to the site (a
// refused address, an unknown host, a site that does not answer) is
// reported as a problem with the URL, the caller's, not as a failure of
// http_get: the tool is shared by every tenant, and one bad URL must not
// open its circuit breaker for all.
func (h *httpGet) call(ctx context.Context, in HTTPGetArgs) (HTTPGetResult, []streams.Payload, error) {
	u, err := checkURL("url", in.URL)
	if err != nil {
		return HTTPGetResult{}, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return HTTPGetResult{}, nil, vigil.FieldError("url", "%v", err)
	}
	req.Header.Set("User-Agent", h.agent)
	req.Header.Set("Accept", "text/html, text/plain, application/json;q=0.9, */*;q=0.5")
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return HTTPGetResult{}, nil, ctx.Err()
		}
		return HTTPGetResult{}, nil, vigil.FieldError("url", "%s", fetchError(err, h.timeout))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBody+1))
	if err != nil && ctx.Err() != nil {
		return HTTPGetResult{}, nil, ctx.Err()
	}
	truncated := int64(len(body)) > h.maxBody || err != nil
	if int64(len(body)) > h.maxBody {
		body = body[:h.maxBody]
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "" {
		mt, _, _ = mime.ParseMediaType(http.DetectContentType(body))
	}
	res := HTTPGetResult{URL: resp.Request.URL.String(), Status: resp.StatusCode, ContentType: mt, Truncated: truncated, Bytes: len(body)}
	if textual(mt) {
		if truncated { // do not end in the middle of a character
			for len(body) > 0 && !utf8.Valid(body) && len(body) > int(h.maxBody)-4 {
				body = body[:len(body)-1]
			}
		}
		res.Body = strings.ToValidUTF8(string(body), "\uFFFD")
	} else {
		res.Binary = true
	}
	return res, nil, nil
}

// fetchError says in words why a fetch failed, without Go's wrapping.
func fetchError(err error, timeout time.Duration) string {
	if be, ok := blocked(err); ok {
		return be.Error()
	}
	var dns *net.DNSError
	var ue *url.Error
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return fmt.Sprintf("the host %s does not exist", dns.Name)
	case errors.As(err, &ue) && ue.Timeout():
		return fmt.Sprintf("the site did not answer within %s", timeout)
	case errors.As(err, &ue):
		return "the fetch failed: " + ue.Err.Error()
	}
	return "the fetch failed: " + err.Error()
}

func textual(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "json"), strings.HasSuffix(mt, "xml"),
		strings.Contains(mt, "javascript"), mt == "application/x-www-form-urlencoded":
		return true
	}
	return false
}

// TimeNowArgs are the arguments of time_now.
type TimeNowArgs struct {
	Zone string `json:"zone,omitempty" jsonschema:"maxLength=64" jsonschema_description:"An IANA time zone such as Asia/Shanghai; the server's default zone when absent."`
}

// TimeNowResult is the result of time_now.
type TimeNowResult struct {
	Time      string `json:"time" jsonschema:"format=date-time" jsonschema_description:"The current time, RFC 3339 with the zone's offset."`
	Zone      string `json:"zone" jsonschema_description:"The zone's IANA name."`
	UTCOffset string `json:"utc_offset" jsonschema_description:"The zone's offset from UTC now, such as +08:00."`
	Date      string `json:"date" jsonschema:"format=date" jsonschema_description:"Today's date in the zone."`
	Clock     string `json:"clock" jsonschema_description:"The time of day in the zone, HH:MM."`
	Weekday   string `json:"weekday" jsonschema_description:"The day of the week in the zone, in English."`
	Unix      int64  `json:"unix" jsonschema_description:"Seconds since 1970-01-01 UTC."`
}

func timeNow(now time.Time, def *time.Location, in TimeNowArgs) (TimeNowResult, []streams.Payload, error) {
	loc := def
	if in.Zone != "" {
		var err error
		if loc, err = time.LoadLocation(in.Zone); err != nil || in.Zone == "Local" {
			return TimeNowResult{}, nil, vigil.FieldError("zone", "is not an IANA time zone such as Asia/Shanghai or Europe/Paris: %q", in.Zone)
		}
	}
	t := now.In(loc)
	return TimeNowResult{
		Time: t.Format(time.RFC3339), Zone: loc.String(), UTCOffset: t.Format("-07:00"),
		Date: t.Format(time.DateOnly), Clock: t.Format("15:04"), Weekday: t.Weekday().String(), Unix: t.Unix(),
	}, nil, nil
}

// CalculateArgs are the arguments of calculate.
type CalculateArgs struct {
	Expression string `json:"expression" jsonschema:"minLength=1,maxLength=500" jsonschema_description:"An arithmetic expression such as (3.5 + 2) * 4 or round(100 / 3) or 2 ** 10."`
}

// CalculateResult is the result of calculate.
type CalculateResult struct {
	Expression string  `json:"expression" jsonschema_description:"The expression evaluated."`
	Result     float64 `json:"result" jsonschema_description:"Its value."`
}

// calcFunctions are the builtins of expr that calculate allows.
var calcFunctions = []string{"abs", "ceil", "floor", "round", "min", "max"}

// calculate evaluates an arithmetic expression with expr-lang/expr, with
// no environment (no variables, no Go values), only number literals,
// arithmetic operators and a few numeric functions, and at most 200 nodes,
// so evaluation is bounded and cannot reach anything. All arithmetic is in
// float64.
func calculate(_ context.Context, in CalculateArgs) (CalculateResult, []streams.Payload, error) {
	opts := []expr.Option{
		expr.Env(map[string]any{}),
		expr.DisableAllBuiltins(),
		expr.MaxNodes(200),
		expr.Function("sqrt", func(p ...any) (any, error) {
			f, ok := toFloat(p[0])
			if !ok || f < 0 {
				return nil, errors.New("sqrt needs a number that is not negative")
			}
			return math.Sqrt(f), nil
		}, new(func(float64) float64)),
		// Numbers are float64 throughout (integer literals are made floats,
		// so that int64 arithmetic cannot wrap around), and % on floats is
		// math.Mod.
		expr.Function("fmod", func(p ...any) (any, error) {
			a, _ := toFloat(p[0])
			b, _ := toFloat(p[1])
			return math.Mod(a, b), nil
		}, new(func(float64, float64) float64)),
		expr.Operator("%", "fmod"),
	}
	for _, f := range calcFunctions {
		opts = append(opts, expr.EnableBuiltin(f))
	}
	var guard arithmeticOnly
	opts = append([]expr.Option{expr.Patch(&guard)}, opts...)
	prog, err := expr.Compile(in.Expression, opts...)
	if guard.err != nil {
		return CalculateResult{}, nil, vigil.FieldError("expression", "%v", guard.err)
	}
	if err != nil {
		return CalculateResult{}, nil, vigil.FieldError("expression", "is not an arithmetic expression: %s", firstLine(err.Error()))
	}
	v, err := expr.Run(prog, nil)
	if err != nil {
		return CalculateResult{}, nil, vigil.FieldError("expression", "cannot be evaluated: %s", firstLine(err.Error()))
	}
	f, ok := toFloat(v)
	if !ok {
		return CalculateResult{}, nil, vigil.FieldError("expression", "does not give a number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return CalculateResult{}, nil, vigil.FieldError("expression", "does not give a finite number (division by zero?)")
	}
	return CalculateResult{Expression: in.Expression, Result: f}, nil, nil
}

// arithmeticOnly is an expr patcher that records the first node that is
// not arithmetic, so that strings, maps, member access, closures and the
// like are refused by name rather than by accident.
type arithmeticOnly struct{ err error }

var calcOperators = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "**": true, "^": true}

// Visit implements ast.Visitor.
func (a *arithmeticOnly) Visit(node *ast.Node) {
	if a.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.IntegerNode:
		ast.Patch(node, &ast.FloatNode{Value: float64(n.Value)})
	case *ast.FloatNode:
	case *ast.UnaryNode:
		if n.Operator != "-" && n.Operator != "+" {
			a.err = fmt.Errorf("may not use the operator %q: only arithmetic is allowed", n.Operator)
		}
	case *ast.BinaryNode:
		if !calcOperators[n.Operator] {
			a.err = fmt.Errorf("may not use the operator %q: only + - * / %% ** are allowed", n.Operator)
		}
	case *ast.BuiltinNode:
		if !contains(calcFunctions, n.Name) {
			a.err = fmt.Errorf("may not use the function %q", n.Name)
		}
	case *ast.CallNode:
	case *ast.IdentifierNode:
		if n.Value != "sqrt" && !contains(calcFunctions, n.Value) {
			a.err = fmt.Errorf("may not use the name %q: there are no variables, only numbers and the functions %s and sqrt",
				n.Value, strings.Join(calcFunctions, ", "))
		}
	default:
		a.err = errors.New("may hold only numbers, arithmetic operators, parentheses and the allowed functions")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// RenderTableArgs are the arguments of render_table.
type RenderTableArgs struct {
	Title   string   `json:"title,omitempty" jsonschema:"maxLength=200" jsonschema_description:"A caption for the table."`
	Columns []string `json:"columns" jsonschema:"minItems=1,maxItems=50" jsonschema_description:"The column headings."`
	Rows    [][]any  `json:"rows" jsonschema:"maxItems=1000" jsonschema_description:"The rows, each an array with one value per column."`
}

// RenderTableResult is the result of render_table.
type RenderTableResult struct {
	Columns  int    `json:"columns" jsonschema_description:"How many columns the table has."`
	Rows     int    `json:"rows" jsonschema_description:"How many rows the table has."`
	Markdown string `json:"markdown" jsonschema_description:"The table in Markdown, for a text message."`
}

func renderTable(_ context.Context, in RenderTableArgs) (RenderTableResult, []streams.Payload, error) {
	for i, row := range in.Rows {
		if len(row) != len(in.Columns) {
			return RenderTableResult{}, nil, vigil.FieldError(fmt.Sprintf("rows.%d", i), "has %d cells, want %d (one per column)", len(row), len(in.Columns))
		}
	}
	cell := func(v any) string {
		s, ok := v.(string)
		if !ok {
			s = string(marshal(v))
		}
		return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
	}
	var b strings.Builder
	if in.Title != "" {
		b.WriteString("**" + cell(in.Title) + "**\n\n")
	}
	line := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	head := make([]string, len(in.Columns))
	rule := make([]string, len(in.Columns))
	for i, c := range in.Columns {
		head[i], rule[i] = cell(c), "---"
	}
	line(head)
	line(rule)
	for _, row := range in.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = cell(v)
		}
		line(cells)
	}
	rows := in.Rows
	if rows == nil {
		rows = [][]any{}
	}
	return RenderTableResult{Columns: len(in.Columns), Rows: len(in.Rows), Markdown: b.String()},
		[]streams.Payload{streams.Table{Columns: in.Columns, Rows: rows}}, nil
}

// RenderChartArgs are the arguments of render_chart.
type RenderChartArgs struct {
	Title  string    `json:"title,omitempty" jsonschema:"maxLength=200" jsonschema_description:"What the chart shows; it becomes the image's text alternative."`
	Kind   string    `json:"kind,omitempty" jsonschema:"enum=bar,enum=line,default=bar" jsonschema_description:"bar or line."`
	Labels []string  `json:"labels,omitempty" jsonschema:"maxItems=500" jsonschema_description:"One label per value, such as dates; as many as values when given."`
	Values []float64 `json:"values" jsonschema:"minItems=1,maxItems=500" jsonschema_description:"The values to plot, in order."`
	Width  int       `json:"width,omitempty" jsonschema:"minimum=100,maximum=2000,default=640" jsonschema_description:"The image width in pixels."`
	Height int       `json:"height,omitempty" jsonschema:"minimum=100,maximum=2000,default=360" jsonschema_description:"The image height in pixels."`
}

// RenderChartResult is the result of render_chart; the image is its part.
type RenderChartResult struct {
	Width  int    `json:"width" jsonschema_description:"The image width in pixels."`
	Height int    `json:"height" jsonschema_description:"The image height in pixels."`
	MIME   string `json:"mime" jsonschema_description:"The image's media type, image/png."`
	Bytes  int    `json:"bytes" jsonschema_description:"The size of the PNG in bytes."`
}

func renderChartTool(_ context.Context, in RenderChartArgs) (RenderChartResult, []streams.Payload, error) {
	if len(in.Labels) > 0 && len(in.Labels) != len(in.Values) {
		return RenderChartResult{}, nil, vigil.FieldError("labels", "has %d labels for %d values; give one per value or none", len(in.Labels), len(in.Values))
	}
	w, h := in.Width, in.Height
	if w == 0 {
		w = 640
	}
	if h == 0 {
		h = 360
	}
	kind := in.Kind
	if kind == "" {
		kind = "bar"
	}
	png, err := renderChart(kind, in.Values, w, h)
	if err != nil {
		return RenderChartResult{}, nil, err
	}
	alt := in.Title
	if alt == "" {
		alt = kind + " chart"
	}
	alt += chartSummary(in.Labels, in.Values)
	return RenderChartResult{Width: w, Height: h, MIME: "image/png", Bytes: len(png)},
		[]streams.Payload{streams.Image{Data: png, MIME: "image/png", Alt: alt}}, nil
}

// chartSummary spells the values out for the image's text alternative:
// ": Mon 3, Tue 5, …", or a range when there are many.
func chartSummary(labels []string, values []float64) string {
	if len(values) > 12 {
		lo, hi := values[0], values[0]
		for _, v := range values {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		return fmt.Sprintf(" (%d values from %g to %g)", len(values), lo, hi)
	}
	parts := make([]string, len(values))
	for i, v := range values {
		if i < len(labels) {
			parts[i] = fmt.Sprintf("%s %g", labels[i], v)
		} else {
			parts[i] = fmt.Sprintf("%g", v)
		}
	}
	return ": " + strings.Join(parts, ", ")
}
