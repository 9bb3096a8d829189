package toolsregistry_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
	"github.com/vigilhq/vigil/toolsregistry/webapitest"
)

// domainRegistry returns a registry with the built-in tools, their domain
// tools pointed at api and their guard allowing loopback, where api
// listens.
func domainRegistry(t *testing.T, api *webapitest.Server, allowLoopback bool) *toolsregistry.Registry {
	t.Helper()
	var allow []string
	if allowLoopback {
		allow = []string{"127.0.0.1"}
	}
	defs, err := toolsregistry.Builtins(toolsregistry.BuiltinOptions{
		Guard:        toolsregistry.GuardOptions{Allow: allow},
		GeocodingURL: api.URL, WeatherURL: api.URL, PriceURL: api.URL, NewsURL: api.URL + "/rss",
		APITimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := toolsregistry.New(toolsregistry.Options{})
	if err := reg.RegisterAll(defs); err != nil {
		t.Fatal(err)
	}
	return reg
}

// callTool calls tool with args for tenant acme holding read:web and
// decodes its output into out.
func callTool(t *testing.T, reg *toolsregistry.Registry, tool, args string, out any) *toolsregistry.Error {
	t.Helper()
	res, err := reg.Call(context.Background(), toolsregistry.Request{
		Tenant: "acme", Scopes: []string{"read:web"}, Tool: tool, Args: json.RawMessage(args),
	})
	if err != nil {
		var te *toolsregistry.Error
		if !errors.As(err, &te) {
			t.Fatalf("%s %s: %T %v", tool, args, err, err)
		}
		return te
	}
	if err := json.Unmarshal(res.Output, out); err != nil {
		t.Fatalf("%s output %s: %v", tool, res.Output, err)
	}
	return nil
}

func TestWeatherTool(t *testing.T) {
	api := webapitest.New(t)
	reg := domainRegistry(t, api, true)

	var today toolsregistry.WeatherResult
	if te := callTool(t, reg, "weather", `{"city":"Berlin"}`, &today); te != nil {
		t.Fatalf("weather Berlin: %+v", te)
	}
	if today.City != "Berlin" || today.Country != "Germany" || today.Date != "2026-11-22" || today.Conditions != "Light rain" ||
		today.Temperature != 6.3 || today.TemperatureMax != 8.1 || today.TemperatureMin != 2.4 || today.Unit != "°C" ||
		today.Current == nil || today.Current.Humidity != 81 || today.TimeZone != "Europe/Berlin" ||
		today.PrecipitationProbability == nil || *today.PrecipitationProbability != 70 {
		t.Errorf("Berlin today: %+v", today)
	}

	var tomorrow toolsregistry.WeatherResult
	if te := callTool(t, reg, "weather", `{"city":"Berlin","date":"2026-11-23"}`, &tomorrow); te != nil {
		t.Fatalf("weather Berlin tomorrow: %+v", te)
	}
	if tomorrow.Date != "2026-11-23" || tomorrow.Conditions != "Overcast" || tomorrow.Current != nil || tomorrow.Temperature != 7.4 {
		t.Errorf("Berlin tomorrow: %+v (want the day's high as the temperature, no current weather)", tomorrow)
	}

	var beijing toolsregistry.WeatherResult
	if te := callTool(t, reg, "weather", `{"city":"北京"}`, &beijing); te != nil {
		t.Fatalf("weather 北京: %+v", te)
	}
	if beijing.City != "北京市" || beijing.Conditions != "晴" || beijing.Temperature != 5.6 {
		t.Errorf("北京: %+v (want Chinese conditions for a Chinese name)", beijing)
	}

	var maine toolsregistry.WeatherResult
	api.Weather["43.66147,-70.25533 2026-11-22"] = webapitest.Day{Code: 71, Max: 1, Min: -4, Now: -1.5, Hour: "05:00"}
	if te := callTool(t, reg, "weather", `{"city":"Portland, Maine","language":"en"}`, &maine); te != nil {
		t.Fatalf("weather Portland, Maine: %+v", te)
	}
	if maine.Region != "Maine" || maine.Conditions != "Light snow" || maine.Temperature != -1.5 {
		t.Errorf("Portland, Maine: %+v (want the Maine one)", maine)
	}

	for _, c := range []struct {
		name, args, field string
		retryable         bool
		want              string
	}{
		{"unknown city", `{"city":"Atlantis"}`, "city", false, `no place named "Atlantis"`},
		{"out of range", `{"city":"Berlin","date":"2027-06-01"}`, "date", false, "out of allowed range"},
		{"empty city", `{"city":""}`, "city", false, "empty"},
		{"unknown argument", `{"city":"Berlin","units":"F"}`, "units", false, ""},
	} {
		var out toolsregistry.WeatherResult
		te := callTool(t, reg, "weather", c.args, &out)
		if te == nil || te.Code != vigil.Invalid || te.Field != c.field || te.Retryable != c.retryable || !strings.Contains(te.Message, c.want) {
			t.Errorf("%s: %+v; want an invalid %s error saying %q", c.name, te, c.field, c.want)
		}
	}

	api.Fail("/v1/forecast", 1)
	var out toolsregistry.WeatherResult
	te := callTool(t, reg, "weather", `{"city":"Berlin","date":"2026-11-23","language":"zh"}`, &out)
	if te == nil || !te.Retryable || !strings.Contains(te.Message, "503") {
		t.Errorf("forecast API down: %+v; want a retryable error naming the 503", te)
	}
}

func TestPriceTool(t *testing.T) {
	api := webapitest.New(t)
	reg := domainRegistry(t, api, true)

	var gold toolsregistry.PriceResult
	if te := callTool(t, reg, "price", `{"symbol":"gold"}`, &gold); te != nil {
		t.Fatalf("price gold: %+v", te)
	}
	if gold.Symbol != "gold" || gold.Quote != "GC=F" || gold.Price != 2650.4 || gold.Currency != "USD" ||
		gold.Change != 19.2 || gold.ChangePercent != 0.73 || gold.PreviousClose != 2631.2 ||
		gold.Time != "2026-11-22T00:00:00Z" || gold.Name != "Gold Feb 27" {
		t.Errorf("gold: %+v", gold)
	}
	var btc toolsregistry.PriceResult
	if te := callTool(t, reg, "price", `{"symbol":"BTC"}`, &btc); te != nil {
		t.Fatalf("price BTC: %+v", te)
	}
	if btc.Quote != "BTC-USD" || btc.Change != -1659.55 || btc.ChangePercent != -1.66 {
		t.Errorf("BTC: %+v; want a fall", btc)
	}
	var aapl toolsregistry.PriceResult
	if te := callTool(t, reg, "price", `{"symbol":"aapl"}`, &aapl); te != nil || aapl.Quote != "AAPL" || aapl.Price != 243.01 {
		t.Errorf("aapl: %+v, %+v", aapl, te)
	}

	for _, c := range []struct{ args, want string }{
		{`{"symbol":"NOPE"}`, "not known"},
		{`{"symbol":"../v1/search"}`, "must be a ticker"},
	} {
		var out toolsregistry.PriceResult
		if te := callTool(t, reg, "price", c.args, &out); te == nil || te.Field != "symbol" || !strings.Contains(te.Message, c.want) {
			t.Errorf("%s: %+v; want a symbol error saying %q", c.args, te, c.want)
		}
	}
	if n := api.Calls("/v1/search"); n != 0 {
		t.Errorf("a symbol reached another path of the service: %d geocoding calls", n)
	}
}

func TestNewsTool(t *testing.T) {
	api := webapitest.New(t)
	reg := domainRegistry(t, api, true)

	var ai toolsregistry.NewsResult
	if te := callTool(t, reg, "news", `{"topic":"AI","limit":3}`, &ai); te != nil {
		t.Fatalf("news AI: %+v", te)
	}
	if ai.Topic != "AI" || len(ai.Headlines) != 3 {
		t.Fatalf("news AI: %+v", ai)
	}
	h := ai.Headlines[0]
	if h.Title != "Open model tops benchmark" || h.Source != "The Verge" || h.Published != "2026-11-22T08:00:00Z" ||
		h.Link != "https://news.google.com/rss/articles/ai1" {
		t.Errorf("first headline: %+v", h)
	}
	if got := ai.Headlines[2].Title; got != "Regulators weigh AI rules & fines" {
		t.Errorf("third headline %q; want the entity decoded and the source cut", got)
	}
	var two toolsregistry.NewsResult
	if te := callTool(t, reg, "news", `{"topic":"AI","limit":2}`, &two); te != nil || len(two.Headlines) != 2 {
		t.Errorf("limit 2: %+v, %+v", two, te)
	}
	var top toolsregistry.NewsResult
	if te := callTool(t, reg, "news", `{}`, &top); te != nil || top.Topic != "" || len(top.Headlines) != 1 || top.Headlines[0].Source != "Reuters" {
		t.Errorf("top stories: %+v, %+v", top, te)
	}
	var none toolsregistry.NewsResult
	if te := callTool(t, reg, "news", `{"topic":"nothing happened"}`, &none); te != nil || none.Headlines == nil || len(none.Headlines) != 0 {
		t.Errorf("no news: %+v, %+v; want an empty list", none, te)
	}
	var out toolsregistry.NewsResult
	if te := callTool(t, reg, "news", `{"topic":"AI","limit":50}`, &out); te == nil || te.Field != "limit" {
		t.Errorf("limit 50: %+v; want a limit error", te)
	}
}

// The domain tools reach their services through the SSRF guard: without
// loopback allowed, the test server is refused, and no request reaches it.
func TestDomainToolsGuarded(t *testing.T) {
	api := webapitest.New(t)
	reg := domainRegistry(t, api, false)
	for _, c := range []struct{ tool, args string }{
		{"weather", `{"city":"Berlin"}`}, {"price", `{"symbol":"gold"}`}, {"news", `{"topic":"AI"}`},
	} {
		var out map[string]any
		te := callTool(t, reg, c.tool, c.args, &out)
		if te == nil || !strings.Contains(te.Message, "refused to connect to 127.0.0.1") {
			t.Errorf("%s: %+v; want the loopback refused", c.tool, te)
		}
	}
	for _, p := range []string{"/v1/search", "/v8/finance/chart/GC=F", "/rss/search"} {
		if n := api.Calls(p); n != 0 {
			t.Errorf("%s reached %d times", p, n)
		}
	}
	if _, err := toolsregistry.Builtins(toolsregistry.BuiltinOptions{PriceURL: "ftp://quotes.example"}); err == nil ||
		!strings.Contains(err.Error(), "price_url") {
		t.Errorf("an ftp price URL: %v; want an error naming price_url", err)
	}
}

// Every domain tool has the read:web scope, input and output schemas and a
// timeout.
func TestDomainToolsDeclared(t *testing.T) {
	defs, err := toolsregistry.Builtins(toolsregistry.BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range defs {
		switch d.Tool.Name {
		case "weather", "price", "news":
			seen[d.Tool.Name] = true
			if len(d.Tool.Scopes) != 1 || d.Tool.Scopes[0] != "read:web" || d.Tool.Timeout <= 0 ||
				len(d.Tool.InputSchema) == 0 || len(d.Tool.OutputSchema) == 0 {
				t.Errorf("%s: %+v", d.Tool.Name, d.Tool)
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("domain tools %v; want weather, price and news", seen)
	}
}
