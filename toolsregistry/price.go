package toolsregistry

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// DefaultPriceURL is the quote API the price tool reads when
// BuiltinOptions names no other server: Yahoo Finance's public chart API,
// which needs no key and covers stocks, indices, futures (commodities),
// currencies and crypto.
const DefaultPriceURL = "https://query1.finance.yahoo.com"

// PriceArgs are the arguments of price.
type PriceArgs struct {
	Symbol string `json:"symbol" jsonschema:"minLength=1,maxLength=32" jsonschema_description:"What to quote: a ticker (AAPL, 0700.HK, 600519.SS), an index (SPX, IXIC, DJI, HSI), a commodity (gold, silver, oil), a crypto currency (BTC, ETH) or a currency pair (USDCNY)."`
}

// PriceResult is the result of price: the last price and its change since
// the previous close.
type PriceResult struct {
	Symbol        string  `json:"symbol" jsonschema_description:"The symbol asked for."`
	Quote         string  `json:"quote" jsonschema_description:"The symbol the quote service knows it by, such as GC=F for gold."`
	Name          string  `json:"name,omitempty" jsonschema_description:"What it is, such as Apple Inc. or Gold Feb 27."`
	Price         float64 `json:"price" jsonschema_description:"The last price."`
	Currency      string  `json:"currency" jsonschema_description:"The currency of the price, such as USD."`
	Change        float64 `json:"change" jsonschema_description:"The change since the previous close, in the currency."`
	ChangePercent float64 `json:"change_percent" jsonschema_description:"The change since the previous close, in percent."`
	PreviousClose float64 `json:"previous_close" jsonschema_description:"The previous session's closing price."`
	Time          string  `json:"time" jsonschema:"format=date-time" jsonschema_description:"When the last price was set, RFC 3339 in UTC."`
	Exchange      string  `json:"exchange,omitempty" jsonschema_description:"The market it trades on."`
	Source        string  `json:"source" jsonschema_description:"Where the data comes from."`
}

// quoteSymbols maps the canonical symbols of the planner (and common
// names) to the quote service's.
var quoteSymbols = map[string]string{
	"GOLD": "GC=F", "XAU": "GC=F", "XAUUSD": "GC=F",
	"SILVER": "SI=F", "XAG": "SI=F", "XAGUSD": "SI=F",
	"OIL": "CL=F", "WTI": "CL=F", "CRUDE": "CL=F", "BRENT": "BZ=F",
	"BTC": "BTC-USD", "ETH": "ETH-USD", "SOL": "SOL-USD", "DOGE": "DOGE-USD",
	"SPX": "^GSPC", "IXIC": "^IXIC", "DJI": "^DJI", "HSI": "^HSI",
	"USDCNY": "CNY=X", "USD/CNY": "CNY=X", "EURUSD": "EURUSD=X", "EUR/USD": "EURUSD=X", "USDJPY": "JPY=X",
}

// symbolRe is what a symbol may be (before mapping: "USD/CNY" and
// "crude oil" are names), and quoteRe what a quote symbol may be, so that it
// stays one path segment of the chart API.
var (
	symbolRe = regexp.MustCompile(`^[A-Za-z0-9^][A-Za-z0-9^=.\-/ ]*$`)
	quoteRe  = regexp.MustCompile(`^[A-Za-z0-9^][A-Za-z0-9^=.\-]*$`)
)

type price struct {
	api  webAPI
	base string
}

// chartAnswer is what Yahoo Finance's /v8/finance/chart/{symbol} returns
// (the fields used).
type chartAnswer struct {
	Chart struct {
		Result []struct {
			Meta struct {
				Currency           string   `json:"currency"`
				Symbol             string   `json:"symbol"`
				ExchangeName       string   `json:"exchangeName"`
				FullExchangeName   string   `json:"fullExchangeName"`
				LongName           string   `json:"longName"`
				ShortName          string   `json:"shortName"`
				RegularMarketTime  int64    `json:"regularMarketTime"`
				RegularMarketPrice *float64 `json:"regularMarketPrice"`
				PreviousClose      *float64 `json:"previousClose"`
				ChartPreviousClose *float64 `json:"chartPreviousClose"`
			} `json:"meta"`
		} `json:"result"`
		Error *struct {
			Code        string `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	} `json:"chart"`
}

func (p *price) call(ctx context.Context, in PriceArgs) (PriceResult, []streams.Payload, error) {
	sym := strings.TrimSpace(in.Symbol)
	if sym == "" || !symbolRe.MatchString(sym) {
		return PriceResult{}, nil, vigil.FieldError("symbol", "must be a ticker or a name such as AAPL, gold or BTC, not %q", in.Symbol)
	}
	quote, ok := quoteSymbols[strings.ToUpper(sym)]
	if !ok {
		quote = strings.ToUpper(strings.ReplaceAll(sym, " ", ""))
	}
	if !quoteRe.MatchString(quote) || strings.Contains(quote, "..") {
		return PriceResult{}, nil, vigil.FieldError("symbol", "must be a ticker or a name such as AAPL, gold or BTC, not %q", in.Symbol)
	}
	u, err := endpoint(p.base, "/v8/finance/chart/"+url.PathEscape(quote), url.Values{"range": {"1d"}, "interval": {"1d"}})
	if err != nil {
		return PriceResult{}, nil, err
	}
	var ans chartAnswer
	status, err := p.api.getJSON(ctx, u, &ans)
	if err != nil {
		return PriceResult{}, nil, err
	}
	if e := ans.Chart.Error; e != nil || status != http.StatusOK || len(ans.Chart.Result) == 0 {
		reason := ""
		if e != nil {
			reason = e.Description
		}
		if status == http.StatusNotFound || (e != nil && e.Code == "Not Found") {
			return PriceResult{}, nil, vigil.FieldError("symbol", "is not known to the quote service: %q (%s)", sym, apiReason(status, reason))
		}
		return PriceResult{}, nil, vigil.Errorf(vigil.Unavailable, "the quote service has no price for %s: %s", sym, apiReason(status, reason))
	}
	m := ans.Chart.Result[0].Meta
	if m.RegularMarketPrice == nil {
		return PriceResult{}, nil, vigil.Errorf(vigil.Unavailable, "the quote service has no price for %s", sym)
	}
	res := PriceResult{
		Symbol: sym, Quote: m.Symbol, Name: m.LongName, Price: *m.RegularMarketPrice, Currency: m.Currency,
		Time: time.Unix(m.RegularMarketTime, 0).UTC().Format(time.RFC3339), Exchange: m.FullExchangeName,
		Source: "Yahoo Finance",
	}
	if res.Quote == "" {
		res.Quote = quote
	}
	if res.Name == "" {
		res.Name = m.ShortName
	}
	if res.Exchange == "" {
		res.Exchange = m.ExchangeName
	}
	prev := m.PreviousClose
	if prev == nil {
		prev = m.ChartPreviousClose
	}
	if prev != nil && *prev != 0 {
		res.PreviousClose = *prev
		res.Change = roundTo(res.Price-*prev, 6)
		res.ChangePercent = roundTo((res.Price-*prev) / *prev * 100, 2)
	} else {
		res.PreviousClose = res.Price
	}
	return res, nil, nil
}

// roundTo rounds f to n decimals, so that a change reads 1.23, not
// 1.2299999999.
func roundTo(f float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(f*p) / p
}
