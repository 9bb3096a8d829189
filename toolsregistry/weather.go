package toolsregistry

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// The public Open-Meteo APIs the weather tool reads when BuiltinOptions
// names no other server. Neither needs a key.
const (
	DefaultGeocodingURL = "https://geocoding-api.open-meteo.com"
	DefaultWeatherURL   = "https://api.open-meteo.com"
)

// WeatherArgs are the arguments of weather.
type WeatherArgs struct {
	City     string `json:"city" jsonschema:"minLength=1,maxLength=100" jsonschema_description:"The city, in English or Chinese, such as Paris or 北京; add the country to tell apart cities of one name (Portland, Oregon)."`
	Date     string `json:"date,omitempty" jsonschema:"format=date" jsonschema_description:"The day, YYYY-MM-DD, from a few weeks ago to 15 days ahead; today in the city when absent."`
	Language string `json:"language,omitempty" jsonschema:"enum=en,enum=zh" jsonschema_description:"The language of the conditions and place names: en or zh; zh when the city is written in Chinese, else en."`
}

// WeatherResult is the result of weather: the day's forecast (or record)
// at the place the city's name was found, and the weather now when the day
// is today there.
type WeatherResult struct {
	City        string  `json:"city" jsonschema_description:"The place found for the city's name."`
	Region      string  `json:"region,omitempty" jsonschema_description:"Its region or state."`
	Country     string  `json:"country,omitempty" jsonschema_description:"Its country."`
	Latitude    float64 `json:"latitude" jsonschema_description:"Its latitude in degrees."`
	Longitude   float64 `json:"longitude" jsonschema_description:"Its longitude in degrees."`
	TimeZone    string  `json:"timezone" jsonschema_description:"Its IANA time zone."`
	Date        string  `json:"date" jsonschema:"format=date" jsonschema_description:"The day, in the place's zone."`
	Conditions  string  `json:"conditions" jsonschema_description:"The day's weather in words, such as Light rain."`
	WeatherCode int     `json:"weather_code" jsonschema_description:"The day's WMO weather code (0 clear … 99 thunderstorm with hail)."`
	// Temperature is what a one-line report says: the temperature now on
	// today, else the day's high.
	Temperature              float64     `json:"temperature" jsonschema_description:"The temperature now when the day is today, else the day's high."`
	TemperatureMax           float64     `json:"temperature_max" jsonschema_description:"The day's high."`
	TemperatureMin           float64     `json:"temperature_min" jsonschema_description:"The day's low."`
	Unit                     string      `json:"unit" jsonschema_description:"The unit of the temperatures: °C."`
	PrecipitationProbability *float64    `json:"precipitation_probability,omitempty" jsonschema_description:"The day's highest chance of precipitation, in percent, when known."`
	Current                  *WeatherNow `json:"current,omitempty" jsonschema_description:"The weather now, when the day is today."`
	Source                   string      `json:"source" jsonschema_description:"Where the data comes from."`
}

// WeatherNow is the weather at the time of the call.
type WeatherNow struct {
	Time        string  `json:"time" jsonschema_description:"The local time of the observation, YYYY-MM-DDTHH:MM."`
	Temperature float64 `json:"temperature" jsonschema_description:"The temperature, °C."`
	Conditions  string  `json:"conditions" jsonschema_description:"The weather in words."`
	WeatherCode int     `json:"weather_code" jsonschema_description:"The WMO weather code."`
	WindSpeed   float64 `json:"wind_speed_kmh" jsonschema_description:"The wind speed at 10 m, km/h."`
	Humidity    float64 `json:"humidity_percent" jsonschema_description:"The relative humidity at 2 m, percent."`
}

// weather answers from Open-Meteo: its geocoding API finds the city, its
// forecast API gives the day.
type weather struct {
	api          webAPI
	geocodingURL string
	forecastURL  string
}

// geoAnswer is what Open-Meteo's /v1/search returns (the fields used).
type geoAnswer struct {
	Results []struct {
		Name      string  `json:"name"`
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Country   string  `json:"country"`
		Admin1    string  `json:"admin1"`
		TimeZone  string  `json:"timezone"`
	} `json:"results"`
	Error  bool   `json:"error"`
	Reason string `json:"reason"`
}

// forecastAnswer is what Open-Meteo's /v1/forecast returns for the
// parameters call asks for. Values may be null.
type forecastAnswer struct {
	Error    bool   `json:"error"`
	Reason   string `json:"reason"`
	TimeZone string `json:"timezone"`
	Current  *struct {
		Time        string   `json:"time"`
		Temperature *float64 `json:"temperature_2m"`
		Humidity    *float64 `json:"relative_humidity_2m"`
		WeatherCode *int     `json:"weather_code"`
		WindSpeed   *float64 `json:"wind_speed_10m"`
	} `json:"current"`
	Daily struct {
		Time          []string   `json:"time"`
		WeatherCode   []*int     `json:"weather_code"`
		Max           []*float64 `json:"temperature_2m_max"`
		Min           []*float64 `json:"temperature_2m_min"`
		Precipitation []*float64 `json:"precipitation_probability_max"`
	} `json:"daily"`
}

func (w *weather) call(ctx context.Context, in WeatherArgs) (WeatherResult, []streams.Payload, error) {
	city := strings.TrimSpace(in.City)
	if city == "" {
		return WeatherResult{}, nil, vigil.FieldError("city", "must not be empty")
	}
	lang := in.Language
	if lang == "" {
		lang = "en"
		if hasHan(city) {
			lang = "zh"
		}
	}
	if in.Date != "" {
		if _, err := time.Parse(time.DateOnly, in.Date); err != nil {
			return WeatherResult{}, nil, vigil.FieldError("date", "must be a date such as 2026-11-23, not %q", in.Date)
		}
	}

	// Find the city. "Portland, Oregon" searches Portland and prefers a
	// result whose region or country the rest names.
	name, hint, _ := strings.Cut(city, ",")
	if hint == "" {
		name, hint, _ = strings.Cut(city, "，")
	}
	name, hint = strings.TrimSpace(name), strings.TrimSpace(hint)
	u, err := endpoint(w.geocodingURL, "/v1/search", url.Values{
		"name": {name}, "count": {"10"}, "language": {lang}, "format": {"json"},
	})
	if err != nil {
		return WeatherResult{}, nil, err
	}
	var geo geoAnswer
	status, err := w.api.getJSON(ctx, u, &geo)
	if err != nil {
		return WeatherResult{}, nil, err
	}
	if status != http.StatusOK || geo.Error {
		return WeatherResult{}, nil, vigil.FieldError("city", "cannot be looked up: %s", apiReason(status, geo.Reason))
	}
	if len(geo.Results) == 0 {
		return WeatherResult{}, nil, vigil.FieldError("city", "no place named %q was found", name)
	}
	place := geo.Results[0]
	if hint != "" {
		for _, r := range geo.Results {
			if strings.EqualFold(r.Admin1, hint) || strings.EqualFold(r.Country, hint) {
				place = r
				break
			}
		}
	}

	q := url.Values{
		"latitude":  {strconv.FormatFloat(place.Latitude, 'f', -1, 64)},
		"longitude": {strconv.FormatFloat(place.Longitude, 'f', -1, 64)},
		"current":   {"temperature_2m,relative_humidity_2m,weather_code,wind_speed_10m"},
		"daily":     {"weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max"},
		"timezone":  {"auto"},
	}
	if in.Date != "" {
		q.Set("start_date", in.Date)
		q.Set("end_date", in.Date)
	} else {
		q.Set("forecast_days", "1")
	}
	if u, err = endpoint(w.forecastURL, "/v1/forecast", q); err != nil {
		return WeatherResult{}, nil, err
	}
	var fc forecastAnswer
	if status, err = w.api.getJSON(ctx, u, &fc); err != nil {
		return WeatherResult{}, nil, err
	}
	if status != http.StatusOK || fc.Error {
		// Open-Meteo refuses a date out of its range with a 400 and a reason.
		if in.Date != "" && status == http.StatusBadRequest {
			return WeatherResult{}, nil, vigil.FieldError("date", "is out of range: %s", apiReason(status, fc.Reason))
		}
		return WeatherResult{}, nil, vigil.Errorf(vigil.Unavailable, "Open-Meteo has no forecast for %s: %s", place.Name, apiReason(status, fc.Reason))
	}
	d := fc.Daily
	if len(d.Time) == 0 || len(d.WeatherCode) == 0 || len(d.Max) == 0 || len(d.Min) == 0 ||
		d.WeatherCode[0] == nil || d.Max[0] == nil || d.Min[0] == nil {
		return WeatherResult{}, nil, vigil.Errorf(vigil.Unavailable, "Open-Meteo has no data for %s on %s", place.Name, in.Date)
	}
	res := WeatherResult{
		City: place.Name, Region: place.Admin1, Country: place.Country,
		Latitude: place.Latitude, Longitude: place.Longitude, TimeZone: fc.TimeZone,
		Date: d.Time[0], WeatherCode: *d.WeatherCode[0], Conditions: wmoText(*d.WeatherCode[0], lang),
		TemperatureMax: round1(*d.Max[0]), TemperatureMin: round1(*d.Min[0]), Unit: "°C",
		Source: "Open-Meteo (open-meteo.com)",
	}
	if res.TimeZone == "" {
		res.TimeZone = place.TimeZone
	}
	if len(d.Precipitation) > 0 && d.Precipitation[0] != nil {
		p := *d.Precipitation[0]
		res.PrecipitationProbability = &p
	}
	res.Temperature = res.TemperatureMax
	if c := fc.Current; c != nil && strings.HasPrefix(c.Time, res.Date) && c.Temperature != nil && c.WeatherCode != nil {
		now := &WeatherNow{Time: c.Time, Temperature: round1(*c.Temperature), WeatherCode: *c.WeatherCode, Conditions: wmoText(*c.WeatherCode, lang)}
		if c.WindSpeed != nil {
			now.WindSpeed = round1(*c.WindSpeed)
		}
		if c.Humidity != nil {
			now.Humidity = *c.Humidity
		}
		res.Current = now
		res.Temperature = now.Temperature
	}
	return res, nil, nil
}

// apiReason is an API's reason for refusing a request, or its status.
func apiReason(status int, reason string) string {
	if reason = strings.TrimSpace(reason); reason != "" {
		return reason
	}
	return fmt.Sprintf("the service answered %d %s", status, http.StatusText(status))
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// wmoCodes are the WMO weather interpretation codes Open-Meteo uses, in
// English and Chinese.
var wmoCodes = map[int][2]string{
	0: {"Clear sky", "晴"}, 1: {"Mainly clear", "晴间少云"}, 2: {"Partly cloudy", "多云"}, 3: {"Overcast", "阴"},
	45: {"Fog", "雾"}, 48: {"Rime fog", "雾凇"},
	51: {"Light drizzle", "小毛毛雨"}, 53: {"Drizzle", "毛毛雨"}, 55: {"Dense drizzle", "大毛毛雨"},
	56: {"Light freezing drizzle", "小冻毛毛雨"}, 57: {"Dense freezing drizzle", "冻毛毛雨"},
	61: {"Light rain", "小雨"}, 63: {"Rain", "中雨"}, 65: {"Heavy rain", "大雨"},
	66: {"Light freezing rain", "小冻雨"}, 67: {"Heavy freezing rain", "冻雨"},
	71: {"Light snow", "小雪"}, 73: {"Snow", "中雪"}, 75: {"Heavy snow", "大雪"}, 77: {"Snow grains", "米雪"},
	80: {"Light rain showers", "小阵雨"}, 81: {"Rain showers", "阵雨"}, 82: {"Violent rain showers", "强阵雨"},
	85: {"Light snow showers", "小阵雪"}, 86: {"Heavy snow showers", "大阵雪"},
	95: {"Thunderstorm", "雷阵雨"}, 96: {"Thunderstorm with light hail", "雷阵雨伴有小冰雹"}, 99: {"Thunderstorm with heavy hail", "雷阵雨伴有大冰雹"},
}

// wmoText says a WMO weather code in words in lang (en or zh).
func wmoText(code int, lang string) string {
	t, ok := wmoCodes[code]
	if !ok {
		return fmt.Sprintf("weather code %d", code)
	}
	if lang == "zh" {
		return t[1]
	}
	return t[0]
}

// hasHan reports whether s has Chinese characters.
func hasHan(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
}
