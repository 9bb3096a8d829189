package toolsregistry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
)

// webAPI is the client of one public web API that a built-in domain tool
// (weather, price, news) reads: requests go through the SSRF Guard's
// client, bodies are capped, and failures are phrased for the model.
type webAPI struct {
	name    string // the service, for messages: "Open-Meteo"
	client  *http.Client
	timeout time.Duration
	agent   string
	maxBody int64
}

// maxAPIBody caps what a domain tool reads of one answer.
const maxAPIBody = 2 << 20

// endpoint joins base (an absolute http or https URL, which configuration
// may point at another server speaking the same API) and path, and adds
// query.
func endpoint(base, path string, query url.Values) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("toolsregistry: %q is not an absolute http or https URL", base)
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String(), nil
}

// get fetches u and returns its status and body. A failure to reach the
// service is a vigil.Unavailable error (the service's fault, worth a retry),
// as is a 5xx answer.
func (w *webAPI) get(ctx context.Context, u, accept string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", w.name, err)
	}
	req.Header.Set("User-Agent", w.agent)
	req.Header.Set("Accept", accept)
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, vigil.Errorf(vigil.Unavailable, "%s cannot be reached: %s", w.name, fetchError(err, w.timeout))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, w.maxBody))
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, vigil.Errorf(vigil.Unavailable, "%s: reading the answer: %v", w.name, err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return 0, nil, vigil.Errorf(vigil.Unavailable, "%s answered %s", w.name, resp.Status)
	}
	return resp.StatusCode, body, nil
}

// getJSON fetches u and decodes a JSON body into v whatever the status
// (the APIs put their error messages in JSON); it returns the status.
func (w *webAPI) getJSON(ctx context.Context, u string, v any) (int, error) {
	status, body, err := w.get(ctx, u, "application/json")
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return 0, vigil.Errorf(vigil.Unavailable, "%s answered %d with a body that is not the expected JSON: %v", w.name, status, err)
	}
	return status, nil
}

// domainTools returns the weather, price and news tools of Builtins.
func domainTools(guard *Guard, opts BuiltinOptions) ([]Definition, error) {
	if opts.APITimeout <= 0 {
		opts.APITimeout = 10 * time.Second
	}
	urls := []struct {
		field string
		to    *string
		def   string
	}{
		{"geocoding_url", &opts.GeocodingURL, DefaultGeocodingURL},
		{"weather_url", &opts.WeatherURL, DefaultWeatherURL},
		{"price_url", &opts.PriceURL, DefaultPriceURL},
		{"news_url", &opts.NewsURL, DefaultNewsURL},
	}
	for _, u := range urls {
		if *u.to == "" {
			*u.to = u.def
		}
		if _, err := checkURL(u.field, *u.to); err != nil {
			return nil, err
		}
	}
	api := func(name string) webAPI {
		return webAPI{name: name, client: guard.Client(opts.APITimeout), timeout: opts.APITimeout, agent: opts.UserAgent, maxBody: maxAPIBody}
	}
	w := &weather{api: api("Open-Meteo"), geocodingURL: opts.GeocodingURL, forecastURL: opts.WeatherURL}
	p := &price{api: api("the quote service"), base: opts.PriceURL}
	n := &news{api: api("the news feed"), base: opts.NewsURL}
	// Each tool's timeout is a little above its client's, so that a slow
	// service is reported by the client as the service's fault.
	return []Definition{
		typed(Tool{
			Name: "weather", Version: 1, Scopes: []string{"read:web"},
			Description: "Get the weather of a city on a day (today when no date is given): conditions in words, " +
				"the temperature (now for today, else the high), the day's high and low in °C and the chance of precipitation.",
			Timeout:  2*opts.APITimeout + 2*time.Second, // two requests: geocoding, then forecast
			CacheTTL: 10 * time.Minute,
		}, w.call),
		typed(Tool{
			Name: "price", Version: 1, Scopes: []string{"read:web"},
			Description: "Get the last price of a stock, index, commodity (gold, silver, oil), currency pair or crypto currency, " +
				"with its currency and its change since the previous close.",
			Timeout:  opts.APITimeout + 2*time.Second,
			CacheTTL: time.Minute,
		}, p.call),
		typed(Tool{
			Name: "news", Version: 1, Scopes: []string{"read:web"},
			Description: "List the latest news headlines about a topic (or the top stories), with their links, publications and times.",
			Timeout:     opts.APITimeout + 2*time.Second,
			CacheTTL:    5 * time.Minute,
		}, n.call),
	}, nil
}
