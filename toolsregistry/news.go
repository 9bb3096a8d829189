package toolsregistry

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// DefaultNewsURL is the feed service the news tool reads when
// BuiltinOptions names no other: Google News RSS, which needs no key. The
// tool asks {base}?hl=… for top stories and {base}/search?q=TOPIC&hl=… for
// a topic; any server that answers those paths with RSS 2.0 or Atom will
// do.
const DefaultNewsURL = "https://news.google.com/rss"

// NewsArgs are the arguments of news.
type NewsArgs struct {
	Topic    string `json:"topic,omitempty" jsonschema:"maxLength=200" jsonschema_description:"What the news should be about, such as AI, Tesla or 北京 天气; the top stories when absent."`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=20" jsonschema_description:"How many headlines at most; 5 when absent."`
	Language string `json:"language,omitempty" jsonschema:"enum=en,enum=zh" jsonschema_description:"The language and region of the news: en (United States) or zh (China); zh when the topic is written in Chinese, else en."`
}

// NewsResult is the result of news.
type NewsResult struct {
	Topic     string     `json:"topic,omitempty" jsonschema_description:"The topic asked for; absent for the top stories."`
	Headlines []Headline `json:"headlines" jsonschema_description:"The newest headlines first, as the feed orders them."`
	Source    string     `json:"source" jsonschema_description:"Where the headlines come from."`
}

// Headline is one news item.
type Headline struct {
	Title     string `json:"title" jsonschema_description:"The headline."`
	Link      string `json:"link,omitempty" jsonschema_description:"The article's URL."`
	Source    string `json:"source,omitempty" jsonschema_description:"The publication."`
	Published string `json:"published,omitempty" jsonschema:"format=date-time" jsonschema_description:"When it was published, RFC 3339 in UTC."`
}

type news struct {
	api  webAPI
	base string
}

// feed is an RSS 2.0 or an Atom document: one of Channel or Entries is
// filled.
type feed struct {
	Channel struct {
		Title string    `xml:"title"`
		Items []rssItem `xml:"item"`
	} `xml:"channel"`
	Title   string      `xml:"title"`
	Entries []atomEntry `xml:"entry"`
}

type rssItem struct {
	Title   string `xml:"title"`
	Link    string `xml:"link"`
	PubDate string `xml:"pubDate"`
	Source  string `xml:"source"`
}

type atomEntry struct {
	Title string `xml:"title"`
	Links []struct {
		Href string `xml:"href,attr"`
		Rel  string `xml:"rel,attr"`
	} `xml:"link"`
	Updated   string `xml:"updated"`
	Published string `xml:"published"`
	Source    struct {
		Title string `xml:"title"`
	} `xml:"source"`
	Author struct {
		Name string `xml:"name"`
	} `xml:"author"`
}

func (n *news) call(ctx context.Context, in NewsArgs) (NewsResult, []streams.Payload, error) {
	topic := strings.TrimSpace(in.Topic)
	limit := in.Limit
	if limit <= 0 {
		limit = 5
	}
	lang := in.Language
	if lang == "" {
		lang = "en"
		if hasHan(topic) {
			lang = "zh"
		}
	}
	q := url.Values{"hl": {"en-US"}, "gl": {"US"}, "ceid": {"US:en"}}
	if lang == "zh" {
		q = url.Values{"hl": {"zh-CN"}, "gl": {"CN"}, "ceid": {"CN:zh-Hans"}}
	}
	path := ""
	if topic != "" {
		path = "/search"
		q.Set("q", topic)
	}
	u, err := endpoint(n.base, path, q)
	if err != nil {
		return NewsResult{}, nil, err
	}
	status, body, err := n.api.get(ctx, u, "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9")
	if err != nil {
		return NewsResult{}, nil, err
	}
	if status != http.StatusOK {
		return NewsResult{}, nil, vigil.Errorf(vigil.Unavailable, "the news feed answered %d %s", status, http.StatusText(status))
	}
	heads, err := parseFeed(body, limit)
	if err != nil {
		return NewsResult{}, nil, vigil.Errorf(vigil.Unavailable, "the news feed is not RSS or Atom: %v", err)
	}
	return NewsResult{Topic: topic, Headlines: heads, Source: "Google News"}, nil, nil
}

// parseFeed reads at most limit headlines of an RSS 2.0 or Atom document.
// It is never nil.
func parseFeed(body []byte, limit int) ([]Headline, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return r, nil
		}
		return nil, fmt.Errorf("the feed's charset %q is not supported", label)
	}
	var f feed
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	heads := []Headline{}
	add := func(title, link, source, published string) {
		title = strings.TrimSpace(html.UnescapeString(title))
		source = strings.TrimSpace(source)
		if title == "" || len(heads) >= limit {
			return
		}
		// Google News ends a title with " - Publication".
		if source != "" {
			title = strings.TrimSpace(strings.TrimSuffix(title, " - "+source))
		}
		heads = append(heads, Headline{Title: title, Link: strings.TrimSpace(link), Source: source, Published: feedTime(published)})
	}
	for _, it := range f.Channel.Items {
		add(it.Title, it.Link, it.Source, it.PubDate)
	}
	for _, e := range f.Entries {
		link := ""
		for _, l := range e.Links {
			if l.Rel == "" || l.Rel == "alternate" {
				link = l.Href
				break
			}
		}
		source := e.Source.Title
		if source == "" {
			source = e.Author.Name
		}
		pub := e.Published
		if pub == "" {
			pub = e.Updated
		}
		add(e.Title, link, source, pub)
	}
	return heads, nil
}

// feedTime turns a feed's date (RFC 1123 in RSS, RFC 3339 in Atom) into
// RFC 3339 in UTC, or "" when it cannot be read.
func feedTime(s string) string {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, time.RFC3339, "Mon, 2 Jan 2006 15:04:05 -0700", "Mon, 2 Jan 2006 15:04:05 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return ""
}
