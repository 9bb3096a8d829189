// Package webapitest serves, on a real httptest server, the public web APIs
// that the built-in domain tools of toolsregistry read: Open-Meteo's
// geocoding (/v1/search) and forecast (/v1/forecast), Yahoo Finance's chart
// API (/v8/finance/chart/{symbol}) and Google News RSS (/rss,
// /rss/search). The answers have the shape of answers recorded from those
// services, with values the tests choose, so that a test can check what a
// tool, or a task run that calls it, makes of them.
//
// Point BuiltinOptions.GeocodingURL and WeatherURL at Server.URL,
// PriceURL at Server.URL too, NewsURL at Server.URL+"/rss", and allow
// 127.0.0.1 in the guard.
package webapitest

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Place is a city the geocoding API knows.
type Place struct {
	Name, Country, Admin1, TimeZone string
	Latitude, Longitude             float64
}

// Day is the weather of a place on a day.
type Day struct {
	Code          int // WMO weather code
	Max, Min      float64
	Precipitation float64 // percent
	// Now, Hour and HumNow are the current temperature, the local time
	// (HH:MM) and the humidity, reported when the day is Server.Today.
	Now    float64
	Hour   string
	HumNow float64
}

// Quote is an instrument the chart API knows, by its quote symbol (GC=F).
type Quote struct {
	Name, Currency, Exchange string
	Price, PreviousClose     float64
	Time                     int64 // Unix seconds of the last price
}

// Story is a headline of the news feed.
type Story struct{ Title, Source, Link, PubDate string }

// Server is the fake APIs. Set its maps before the first request; the
// counters may be read at any time.
type Server struct {
	*httptest.Server
	// Today is the date (YYYY-MM-DD) the forecast API takes for today,
	// the day it answers without start_date and the only day it reports
	// current weather for. Days further than 16 days from it, or not in
	// Weather, are out of range.
	Today string
	// Places are keyed by the searched name ("Berlin", "北京").
	Places map[string][]Place
	// Weather is keyed by latitude,longitude as the request spells them
	// and the date: "52.52437,13.41053 2026-11-22".
	Weather map[string]Day
	// Quotes are keyed by quote symbol.
	Quotes map[string]Quote
	// News is keyed by query ("" for the top stories).
	News map[string][]Story

	mu    sync.Mutex
	calls map[string]int
	fail  map[string]int
}

// New starts a Server with a few places, days, quotes and stories; the
// test may change them before the first request. It is closed when the
// test ends.
func New(t testing.TB) *Server {
	s := &Server{
		Today: "2026-11-22",
		Places: map[string][]Place{
			"Berlin":  {{Name: "Berlin", Country: "Germany", Admin1: "Land Berlin", TimeZone: "Europe/Berlin", Latitude: 52.52437, Longitude: 13.41053}},
			"北京":      {{Name: "北京市", Country: "中国", Admin1: "北京市", TimeZone: "Asia/Shanghai", Latitude: 39.9075, Longitude: 116.39723}},
			"Beijing": {{Name: "Beijing", Country: "China", Admin1: "Beijing", TimeZone: "Asia/Shanghai", Latitude: 39.9075, Longitude: 116.39723}},
			"Portland": {
				{Name: "Portland", Country: "United States", Admin1: "Oregon", TimeZone: "America/Los_Angeles", Latitude: 45.52345, Longitude: -122.67621},
				{Name: "Portland", Country: "United States", Admin1: "Maine", TimeZone: "America/New_York", Latitude: 43.66147, Longitude: -70.25533},
			},
		},
		Weather: map[string]Day{
			"52.52437,13.41053 2026-11-22":   {Code: 61, Max: 8.1, Min: 2.4, Precipitation: 70, Now: 6.3, Hour: "11:00", HumNow: 81},
			"52.52437,13.41053 2026-11-23":   {Code: 3, Max: 7.4, Min: 1.2, Precipitation: 20},
			"39.9075,116.39723 2026-11-22":   {Code: 0, Max: 9.8, Min: -2.1, Precipitation: 0, Now: 5.6, Hour: "18:00", HumNow: 23},
			"39.9075,116.39723 2026-11-23":   {Code: 2, Max: 7.9, Min: -3.4, Precipitation: 5},
			"45.52345,-122.67621 2026-11-22": {Code: 63, Max: 11.2, Min: 6.9, Precipitation: 90, Now: 8.0, Hour: "02:00", HumNow: 93},
		},
		Quotes: map[string]Quote{
			"GC=F":    {Name: "Gold Feb 27", Currency: "USD", Exchange: "COMEX", Price: 2650.4, PreviousClose: 2631.2, Time: 1795305600},
			"AAPL":    {Name: "Apple Inc.", Currency: "USD", Exchange: "NasdaqGS", Price: 243.01, PreviousClose: 239.59, Time: 1795305600},
			"BTC-USD": {Name: "Bitcoin USD", Currency: "USD", Exchange: "CCC", Price: 98210.55, PreviousClose: 99870.1, Time: 1795305600},
		},
		News: map[string][]Story{
			"": {{Title: "Top story of the day - Reuters", Source: "Reuters", Link: "https://news.google.com/rss/articles/top1", PubDate: "Sun, 22 Nov 2026 09:12:00 GMT"}},
			"AI": {
				{Title: "Open model tops benchmark - The Verge", Source: "The Verge", Link: "https://news.google.com/rss/articles/ai1", PubDate: "Sun, 22 Nov 2026 08:00:00 GMT"},
				{Title: "Chip makers race for AI demand - Reuters", Source: "Reuters", Link: "https://news.google.com/rss/articles/ai2", PubDate: "Sat, 21 Nov 2026 22:30:00 GMT"},
				{Title: "Regulators weigh AI rules &amp; fines - BBC", Source: "BBC", Link: "https://news.google.com/rss/articles/ai3", PubDate: "Sat, 21 Nov 2026 19:05:00 GMT"},
			},
		},
		calls: map[string]int{},
		fail:  map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/search", s.search)
	mux.HandleFunc("GET /v1/forecast", s.forecast)
	mux.HandleFunc("GET /v8/finance/chart/{symbol}", s.chart)
	mux.HandleFunc("GET /rss", s.rss)
	mux.HandleFunc("GET /rss/search", s.rss)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Calls returns how many requests path ("/v1/search") has had.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// Fail makes the next n requests to path answer 503.
func (s *Server) Fail(path string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[path] = n
}

// count counts a request and reports whether it is to fail.
func (s *Server) count(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	if s.fail[r.URL.Path] > 0 {
		s.fail[r.URL.Path]--
		http.Error(w, "upstream overloaded", http.StatusServiceUnavailable)
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	if s.count(w, r) {
		return
	}
	q := r.URL.Query()
	out := map[string]any{"generationtime_ms": 0.61}
	var results []map[string]any
	for i, p := range s.Places[q.Get("name")] {
		results = append(results, map[string]any{
			"id": 2950159 + i, "name": p.Name, "latitude": p.Latitude, "longitude": p.Longitude, "elevation": 74.0,
			"feature_code": "PPLC", "country_code": "XX", "timezone": p.TimeZone, "population": 3426354,
			"country": p.Country, "admin1": p.Admin1,
		})
	}
	if len(results) > 0 { // Open-Meteo leaves "results" out when nothing matched
		out["results"] = results
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) forecast(w http.ResponseWriter, r *http.Request) {
	if s.count(w, r) {
		return
	}
	q := r.URL.Query()
	date := q.Get("start_date")
	if date == "" {
		date = s.Today
	}
	if q.Get("latitude") == "" || q.Get("longitude") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": true, "reason": "Parameter 'latitude' and 'longitude' must have the same number of elements"})
		return
	}
	key := q.Get("latitude") + "," + q.Get("longitude")
	day, ok := s.Weather[key+" "+date]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": true,
			"reason": fmt.Sprintf("Parameter 'start_date' is out of allowed range from 2026-08-24 to 2026-12-08")})
		return
	}
	tz := "GMT"
	for _, ps := range s.Places {
		for _, p := range ps {
			if fmt.Sprint(p.Latitude)+","+fmt.Sprint(p.Longitude) == key {
				tz = p.TimeZone
			}
		}
	}
	// Open-Meteo always reports the current weather, stamped with the
	// local time now; only on Today is that the day asked for.
	now, _ := s.Weather[key+" "+s.Today]
	hour := now.Hour
	if hour == "" {
		hour = "12:00"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"latitude": 52.52, "longitude": 13.419998, "generationtime_ms": 0.08, "utc_offset_seconds": 3600,
		"timezone": tz, "timezone_abbreviation": "GMT+1", "elevation": 38.0,
		"current_units": map[string]string{"time": "iso8601", "interval": "seconds", "temperature_2m": "°C",
			"relative_humidity_2m": "%", "weather_code": "wmo code", "wind_speed_10m": "km/h"},
		"current": map[string]any{"time": s.Today + "T" + hour, "interval": 900, "temperature_2m": now.Now,
			"relative_humidity_2m": now.HumNow, "weather_code": now.Code, "wind_speed_10m": 14.8},
		"daily_units": map[string]string{"time": "iso8601", "weather_code": "wmo code", "temperature_2m_max": "°C",
			"temperature_2m_min": "°C", "precipitation_probability_max": "%"},
		"daily": map[string]any{"time": []string{date}, "weather_code": []int{day.Code},
			"temperature_2m_max": []float64{day.Max}, "temperature_2m_min": []float64{day.Min},
			"precipitation_probability_max": []float64{day.Precipitation}},
	})
}

func (s *Server) chart(w http.ResponseWriter, r *http.Request) {
	if s.count(w, r) {
		return
	}
	sym := r.PathValue("symbol")
	q, ok := s.Quotes[sym]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"chart": map[string]any{"result": nil,
			"error": map[string]string{"code": "Not Found", "description": "No data found, symbol may be delisted"}}})
		return
	}
	meta := map[string]any{
		"currency": q.Currency, "symbol": sym, "exchangeName": "XXX", "fullExchangeName": q.Exchange,
		"instrumentType": "EQUITY", "firstTradeDate": 345479400, "regularMarketTime": q.Time, "hasPrePostMarketData": true,
		"gmtoffset": -18000, "timezone": "EST", "exchangeTimezoneName": "America/New_York",
		"regularMarketPrice": q.Price, "regularMarketDayHigh": q.Price * 1.01, "regularMarketDayLow": q.Price * 0.99,
		"longName": q.Name, "shortName": q.Name, "chartPreviousClose": q.PreviousClose, "previousClose": q.PreviousClose,
		"scale": 3, "priceHint": 2, "dataGranularity": "1d", "range": "1d", "validRanges": []string{"1d", "5d", "1mo"},
	}
	writeJSON(w, http.StatusOK, map[string]any{"chart": map[string]any{"result": []any{map[string]any{
		"meta": meta, "timestamp": []int64{q.Time},
		"indicators": map[string]any{"quote": []any{map[string]any{"open": []float64{q.PreviousClose}, "close": []float64{q.Price}}}},
	}}, "error": nil}})
}

func (s *Server) rss(w http.ResponseWriter, r *http.Request) {
	if s.count(w, r) {
		return
	}
	query := r.URL.Query().Get("q")
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><rss xmlns:media="http://search.yahoo.com/mrss/" version="2.0"><channel>`)
	b.WriteString(`<generator>NFE/5.0</generator><title>` + html.EscapeString(query) + ` - Google News</title>`)
	b.WriteString(`<link>https://news.google.com/?hl=en-US&amp;gl=US&amp;ceid=US:en</link><language>en-US</language>`)
	b.WriteString(`<lastBuildDate>Sun, 22 Nov 2026 10:00:00 GMT</lastBuildDate><description>Google News</description>`)
	for _, st := range s.News[query] {
		// Titles are stored as they appear in the XML (escaped).
		fmt.Fprintf(&b, `<item><title>%s</title><link>%s</link><guid isPermaLink="false">%s</guid><pubDate>%s</pubDate>`+
			`<description>&lt;a href="%s"&gt;%s&lt;/a&gt;</description><source url="https://example.com">%s</source></item>`,
			st.Title, st.Link, st.Link, st.PubDate, st.Link, st.Title, html.EscapeString(st.Source))
	}
	b.WriteString(`</channel></rss>`)
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	_, _ = w.Write([]byte(b.String()))
}
