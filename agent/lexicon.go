package agent

import (
	"regexp"
	"sort"
	"strings"
)

// This file holds the offline planner's word lists: cities, market symbols,
// news topics and the keyword sets that signal a domain. They are plain
// tables so that adding a city or a ticker is a one-line change.

// city is one city with its Chinese and English names. A match in Chinese
// text yields the Chinese name, a match in English text the English one.
type city struct {
	zh, en  string
	aliases []string // other English spellings, matched case-insensitively
}

var cityTable = []city{
	// Mainland China, Hong Kong, Macau and Taiwan.
	{"北京", "Beijing", []string{"Peking"}}, {"上海", "Shanghai", nil}, {"广州", "Guangzhou", []string{"Canton"}},
	{"深圳", "Shenzhen", nil}, {"杭州", "Hangzhou", nil}, {"成都", "Chengdu", nil}, {"重庆", "Chongqing", nil},
	{"武汉", "Wuhan", nil}, {"西安", "Xi'an", []string{"Xian"}}, {"南京", "Nanjing", nil}, {"天津", "Tianjin", nil},
	{"苏州", "Suzhou", nil}, {"长沙", "Changsha", nil}, {"郑州", "Zhengzhou", nil}, {"青岛", "Qingdao", nil},
	{"厦门", "Xiamen", nil}, {"昆明", "Kunming", nil}, {"大连", "Dalian", nil}, {"沈阳", "Shenyang", nil},
	{"哈尔滨", "Harbin", nil}, {"长春", "Changchun", nil}, {"济南", "Jinan", nil}, {"合肥", "Hefei", nil},
	{"福州", "Fuzhou", nil}, {"南昌", "Nanchang", nil}, {"南宁", "Nanning", nil}, {"贵阳", "Guiyang", nil},
	{"兰州", "Lanzhou", nil}, {"太原", "Taiyuan", nil}, {"石家庄", "Shijiazhuang", nil}, {"呼和浩特", "Hohhot", nil},
	{"乌鲁木齐", "Urumqi", nil}, {"拉萨", "Lhasa", nil}, {"西宁", "Xining", nil}, {"银川", "Yinchuan", nil},
	{"海口", "Haikou", nil}, {"三亚", "Sanya", nil}, {"宁波", "Ningbo", nil}, {"无锡", "Wuxi", nil},
	{"温州", "Wenzhou", nil}, {"珠海", "Zhuhai", nil}, {"东莞", "Dongguan", nil}, {"佛山", "Foshan", nil},
	{"桂林", "Guilin", nil}, {"丽江", "Lijiang", nil}, {"大理", "Dali", nil}, {"洛阳", "Luoyang", nil},
	{"扬州", "Yangzhou", nil}, {"绍兴", "Shaoxing", nil}, {"嘉兴", "Jiaxing", nil}, {"烟台", "Yantai", nil},
	{"威海", "Weihai", nil}, {"常州", "Changzhou", nil}, {"徐州", "Xuzhou", nil}, {"泉州", "Quanzhou", nil},
	{"惠州", "Huizhou", nil}, {"中山", "Zhongshan", nil}, {"唐山", "Tangshan", nil}, {"保定", "Baoding", nil},
	{"潍坊", "Weifang", nil}, {"秦皇岛", "Qinhuangdao", nil}, {"张家界", "Zhangjiajie", nil}, {"黄山", "Huangshan", nil},
	{"香港", "Hong Kong", nil}, {"澳门", "Macau", []string{"Macao"}}, {"台北", "Taipei", nil}, {"高雄", "Kaohsiung", nil},
	// Asia and Oceania.
	{"东京", "Tokyo", nil}, {"大阪", "Osaka", nil}, {"京都", "Kyoto", nil}, {"首尔", "Seoul", nil},
	{"新加坡", "Singapore", nil}, {"曼谷", "Bangkok", nil}, {"吉隆坡", "Kuala Lumpur", nil}, {"雅加达", "Jakarta", nil},
	{"马尼拉", "Manila", nil}, {"河内", "Hanoi", nil}, {"胡志明市", "Ho Chi Minh City", nil}, {"孟买", "Mumbai", nil},
	{"新德里", "New Delhi", nil}, {"德里", "Delhi", nil}, {"班加罗尔", "Bangalore", nil}, {"迪拜", "Dubai", nil},
	{"悉尼", "Sydney", nil}, {"墨尔本", "Melbourne", nil}, {"奥克兰", "Auckland", nil},
	// Europe and Africa.
	{"伦敦", "London", nil}, {"巴黎", "Paris", nil}, {"柏林", "Berlin", nil}, {"慕尼黑", "Munich", nil},
	{"法兰克福", "Frankfurt", nil}, {"罗马", "Rome", nil}, {"米兰", "Milan", nil}, {"马德里", "Madrid", nil},
	{"巴塞罗那", "Barcelona", nil}, {"阿姆斯特丹", "Amsterdam", nil}, {"维也纳", "Vienna", nil}, {"苏黎世", "Zurich", nil},
	{"日内瓦", "Geneva", nil}, {"斯德哥尔摩", "Stockholm", nil}, {"哥本哈根", "Copenhagen", nil}, {"奥斯陆", "Oslo", nil},
	{"赫尔辛基", "Helsinki", nil}, {"都柏林", "Dublin", nil}, {"里斯本", "Lisbon", nil}, {"布拉格", "Prague", nil},
	{"华沙", "Warsaw", nil}, {"雅典", "Athens", nil}, {"布鲁塞尔", "Brussels", nil}, {"伊斯坦布尔", "Istanbul", nil},
	{"莫斯科", "Moscow", nil}, {"爱丁堡", "Edinburgh", nil}, {"曼彻斯特", "Manchester", nil},
	{"开罗", "Cairo", nil}, {"约翰内斯堡", "Johannesburg", nil}, {"开普敦", "Cape Town", nil}, {"内罗毕", "Nairobi", nil},
	// The Americas.
	{"纽约", "New York", []string{"NYC", "New York City"}}, {"洛杉矶", "Los Angeles", nil}, {"旧金山", "San Francisco", nil},
	{"西雅图", "Seattle", nil}, {"芝加哥", "Chicago", nil}, {"波士顿", "Boston", nil}, {"华盛顿", "Washington", nil},
	{"迈阿密", "Miami", nil}, {"休斯顿", "Houston", nil}, {"达拉斯", "Dallas", nil}, {"奥斯汀", "Austin", nil},
	{"丹佛", "Denver", nil}, {"亚特兰大", "Atlanta", nil}, {"拉斯维加斯", "Las Vegas", nil}, {"圣地亚哥", "San Diego", nil},
	{"费城", "Philadelphia", nil}, {"凤凰城", "Phoenix", nil}, {"波特兰", "Portland", nil}, {"圣何塞", "San Jose", nil},
	{"檀香山", "Honolulu", nil}, {"多伦多", "Toronto", nil}, {"温哥华", "Vancouver", nil}, {"蒙特利尔", "Montreal", nil},
	{"墨西哥城", "Mexico City", nil}, {"圣保罗", "São Paulo", []string{"Sao Paulo"}}, {"里约热内卢", "Rio de Janeiro", nil},
	{"布宜诺斯艾利斯", "Buenos Aires", nil},
}

// destinationTable holds countries and regions that a travel plan may name
// instead of a city ("日本旅行", "a week in Japan").
var destinationTable = []city{
	{"日本", "Japan", nil}, {"韩国", "South Korea", []string{"Korea"}}, {"泰国", "Thailand", nil}, {"越南", "Vietnam", nil},
	{"马来西亚", "Malaysia", nil}, {"印度尼西亚", "Indonesia", nil}, {"巴厘岛", "Bali", nil}, {"菲律宾", "Philippines", nil},
	{"印度", "India", nil}, {"美国", "United States", []string{"USA", "America"}}, {"英国", "United Kingdom", []string{"UK", "England"}},
	{"法国", "France", nil}, {"德国", "Germany", nil}, {"意大利", "Italy", nil}, {"西班牙", "Spain", nil}, {"瑞士", "Switzerland", nil},
	{"希腊", "Greece", nil}, {"冰岛", "Iceland", nil}, {"澳大利亚", "Australia", nil}, {"新西兰", "New Zealand", nil},
	{"加拿大", "Canada", nil}, {"墨西哥", "Mexico", nil}, {"埃及", "Egypt", nil}, {"土耳其", "Turkey", nil},
	{"马尔代夫", "Maldives", nil}, {"夏威夷", "Hawaii", nil}, {"北海道", "Hokkaido", nil}, {"冲绳", "Okinawa", nil},
	{"云南", "Yunnan", nil}, {"海南", "Hainan", nil}, {"西藏", "Tibet", nil}, {"新疆", "Xinjiang", nil}, {"四川", "Sichuan", nil},
	{"贵州", "Guizhou", nil}, {"广西", "Guangxi", nil}, {"内蒙古", "Inner Mongolia", nil}, {"台湾", "Taiwan", nil},
	{"江苏", "Jiangsu", nil}, {"浙江", "Zhejiang", nil}, {"福建", "Fujian", nil}, {"山东", "Shandong", nil},
}

// symbol is a market symbol in canonical form with the words that name it.
// English names match as whole words, case-insensitively; Chinese names as
// substrings.
type symbol struct {
	canon string
	en    []string
	zh    []string
}

var symbolTable = []symbol{
	{"oil", []string{"crude oil", "crude", "oil", "brent", "wti"}, []string{"国际油价", "油价", "原油", "石油"}},
	{"gold", []string{"gold"}, []string{"黄金", "金价"}},
	{"silver", []string{"silver"}, []string{"白银", "银价"}},
	{"BTC", []string{"btc", "bitcoin", "bitcoins"}, []string{"比特币"}},
	{"ETH", []string{"eth", "ether", "ethereum"}, []string{"以太坊", "以太币"}},
	{"SOL", []string{"solana"}, []string{"索拉纳"}},
	{"DOGE", []string{"doge", "dogecoin"}, []string{"狗狗币"}},
	{"USDCNY", []string{"usd/cny", "usdcny", "usd to cny", "dollar to yuan"}, []string{"美元兑人民币", "美元汇率", "人民币汇率", "美元兑换人民币"}},
	{"SPX", []string{"s&p 500", "s&p500", "sp500", "s&p", "spx"}, []string{"标普500", "标普"}},
	{"IXIC", []string{"nasdaq composite", "nasdaq"}, []string{"纳斯达克", "纳指"}},
	{"DJI", []string{"dow jones", "the dow", "djia"}, []string{"道琼斯", "道指"}},
	{"HSI", []string{"hang seng"}, []string{"恒生指数", "恒指"}},
	{"AAPL", []string{"apple"}, []string{"苹果"}},
	{"TSLA", []string{"tesla"}, []string{"特斯拉"}},
	{"NVDA", []string{"nvidia"}, []string{"英伟达"}},
	{"MSFT", []string{"microsoft"}, []string{"微软"}},
	{"GOOGL", []string{"google", "alphabet"}, []string{"谷歌"}},
	{"AMZN", []string{"amazon"}, []string{"亚马逊"}},
	{"META", []string{"meta", "facebook"}, []string{"脸书"}},
	{"NFLX", []string{"netflix"}, []string{"奈飞", "网飞"}},
	{"BABA", []string{"alibaba"}, []string{"阿里巴巴", "阿里"}},
	{"BIDU", []string{"baidu"}, []string{"百度"}},
	{"PDD", []string{"pinduoduo"}, []string{"拼多多"}},
	{"JD", []string{"jd.com"}, []string{"京东"}},
	{"0700.HK", []string{"tencent"}, []string{"腾讯"}},
}

// notTickers are capitalised words that look like stock tickers but are not.
var notTickers = set("A", "I", "AI", "AM", "PM", "OK", "US", "USA", "UK", "EU", "UN", "USD", "CNY", "RMB", "EUR",
	"GBP", "JPY", "HKD", "EV", "EVS", "CEO", "CFO", "CTO", "API", "URL", "GPT", "LLM", "GDP", "CPI", "PPI", "ETF",
	"IPO", "NYC", "LA", "SF", "DC", "UTC", "GMT", "PST", "PDT", "EST", "EDT", "CET", "CST", "BST", "ET", "PT",
	"TV", "PDF", "FAQ", "ASAP", "FYI", "IT", "HR", "PR", "UI", "UX", "ID", "MY", "ME", "TO", "AT", "IN", "ON",
	"IF", "OR", "AND", "THE", "RSS", "SMS", "NEWS", "HTTP", "HTTPS", "WWW", "DNS", "SSL", "VPN", "CPU", "GPU", "PC")

// topic is a news topic; any of its words (English, whole words) or Chinese
// names (substrings) selects it, and the slot keeps the words the user wrote.
type topic struct {
	en []string
	zh []string
}

var topicTable = []topic{
	{[]string{"hacker news"}, nil},
	{[]string{"github"}, []string{"GitHub", "github"}},
	{[]string{"ai", "artificial intelligence", "machine learning", "llm", "llms"}, []string{"人工智能", "大模型", "AI"}},
	{[]string{"tech", "technology"}, []string{"科技", "技术"}},
	{[]string{"crypto", "cryptocurrency", "blockchain", "web3"}, []string{"加密货币", "币圈", "区块链"}},
	{[]string{"finance", "financial", "markets", "stock market", "business", "economy"}, []string{"财经", "金融", "股市", "经济", "商业"}},
	{[]string{"sports", "sport", "nba", "football", "soccer"}, []string{"体育", "足球", "篮球", "NBA"}},
	{[]string{"world", "international", "global"}, []string{"国际"}},
	{[]string{"politics", "political"}, []string{"时政", "政治"}},
	{[]string{"science"}, []string{"科学"}},
	{[]string{"health"}, []string{"健康", "医疗"}},
	{[]string{"entertainment", "celebrity", "movies"}, []string{"娱乐", "电影"}},
	{[]string{"gaming", "games", "video games"}, []string{"游戏"}},
	{[]string{"startup", "startups"}, []string{"创业"}},
	{[]string{"cars", "automotive"}, []string{"汽车"}},
}

// Keyword sets. English entries are regular expressions matched
// case-insensitively at word boundaries; Chinese entries are substrings.
var (
	weatherWords = keywords([]string{`weather`, `forecasts?`, `temperatures?`, `temps`, `rains?`, `raining`, `snows?`, `snowing`, `storms?`, `typhoons?`},
		[]string{"天气", "气温", "预报", "温度", "下雨", "下雪", "降温", "暴雨", "台风", "降雨"})
	reportWords = keywords([]string{`reports?`, `analysis`, `briefing`, `brief`, `overview`, `review`},
		[]string{"报告", "周报", "日报", "月报", "分析", "简析", "综述"})
	newsWords = keywords([]string{`news`, `headlines?`, `top stories`, `trending`, `articles`, `digest`},
		[]string{"新闻", "资讯", "头条", "热点", "热门", "快讯", "动态", "热搜", "热榜", "要闻", "早报", "晚报", "简报"})
	priceWords = keywords([]string{`prices?`, `stocks?`, `shares?`, `quotes?`, `trading`, `ticker`, `per ounce`, `valuation`},
		[]string{"价格", "股价", "价", "股票", "行情", "报价", "美元", "美金", "盎司"})
	webWords = keywords([]string{`websites?`, `site`, `server`, `endpoint`, `uptime`, `status page`, `homepage`},
		[]string{"网站", "网页", "网址", "服务器", "接口", "站点", "官网"})
	remindWords = keywords([]string{`remind`, `reminders?`, `don'?t let me forget`, `wake me`, `alarm`},
		[]string{"提醒", "叫我", "记得", "别忘", "闹钟", "不要忘"})
	deliverWords = keywords([]string{`send`, `push`, `tell`, `give`, `notify`, `alert`, `text`, `email`, `e-mail`,
		`message`, `ping`, `post`, `show`, `remind`, `report`, `brief`, `let me know`, `deliver`, `summari[sz]e`,
		`compile`, `fetch`, `get me`, `check`, `monitor`, `watch`, `track`, `wake`, `update me`, `share`, `read`, `dm`},
		[]string{"推送", "发送", "发给我", "发我", "给我", "告诉我", "通知", "播报", "提醒", "报告", "汇报", "总结",
			"汇总", "整理", "检查", "查一下", "查询", "监控", "叫我", "推荐", "报一下", "发一份", "发一下"})
	watchWords = keywords([]string{`monitor`, `watch`, `keep an eye on`, `track`, `keep track of`},
		[]string{"监控", "盯着", "盯一下", "关注", "监测", "跟踪"})
	checkWords = keywords([]string{`check`, `ping`, `monitor`, `watch`, `is (?:it )?(?:down|up)`, `goes down`, `is down`,
		`down`, `up`, `uptime`, `available`, `reachable`, `unreachable`, `responding`, `alive`, `errors?`, `fails?`, `failing`, `returns?`, `offline`, `online`, `5\d\d`},
		[]string{"检查", "检测", "监控", "是否正常", "能不能访问", "能否访问", "挂了", "宕机", "访问", "可用", "正常"})
	longRunningWords = keywords([]string{
		`(?:write|draft|prepare|generate|create|produce|compile|put together|make|do|research)\b.*\b(?:report|analysis|guide|overview|whitepaper|study|research|proposal|essay|article|deep dive|review|briefing|paper)`,
		`(?:plan|organi[sz]e|prepare|arrange|design)\b.*\b(?:trip|vacation|holiday|itinerary|journey|tour|getaway|honeymoon|visit)`,
		`itinerary`, `travel guide`, `travel plan`, `research report`, `market research`, `deep dive`,
		`(?:^|(?:can|could|would|will)\s+you\s+|please\s+)research`},
		[]string{"攻略", "规划", "行程", "报告", "调研", "研究一下", "写一篇", "写一份", "方案", "计划书", "综述", "周报", "月报", "日报",
			"深度分析", "旅行计划", "旅游计划", "出行计划", "论文"})
)

// keywordSet matches a list of English patterns and Chinese substrings.
type keywordSet struct {
	en *regexp.Regexp
	zh []string
}

func keywords(en, zh []string) keywordSet {
	return keywordSet{en: regexp.MustCompile(`(?i)\b(?:` + strings.Join(en, "|") + `)\b`), zh: zh}
}

// in reports whether s contains any of the set's words.
func (k keywordSet) in(s string) bool {
	for _, w := range k.zh {
		if strings.Contains(s, w) {
			return true
		}
	}
	return k.en.MatchString(s)
}

// cityMatcher finds known cities: Chinese names as substrings, English names
// and aliases as whole words; destinationMatcher does the same for countries
// and regions.
var (
	cityMatcher        = newCityMatcher(cityTable)
	destinationMatcher = newCityMatcher(destinationTable)
)

type cityIndex struct {
	enRe *regexp.Regexp
	byEn map[string]string // lower-cased English name or alias → English name
	zh   []string          // Chinese names, longest first
}

func newCityMatcher(table []city) cityIndex {
	ix := cityIndex{byEn: map[string]string{}}
	var en []string
	for _, c := range table {
		ix.zh = append(ix.zh, c.zh)
		for _, name := range append([]string{c.en}, c.aliases...) {
			ix.byEn[strings.ToLower(name)] = c.en
			en = append(en, regexp.QuoteMeta(name))
		}
	}
	byLenDesc := func(s []string) {
		sort.SliceStable(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	}
	byLenDesc(en)
	byLenDesc(ix.zh)
	ix.enRe = regexp.MustCompile(`(?i)\b(?:` + strings.Join(en, "|") + `)\b`)
	return ix
}

// find returns the earliest known city in s, in the script it was written in.
func (ix cityIndex) find(s string) (name string, at int) {
	at = -1
	for _, zh := range ix.zh {
		if i := strings.Index(s, zh); i >= 0 && (at < 0 || i < at) {
			name, at = zh, i
		}
	}
	if loc := ix.enRe.FindStringIndex(s); loc != nil && (at < 0 || loc[0] < at) {
		name, at = ix.byEn[strings.ToLower(s[loc[0]:loc[1]])], loc[0]
	}
	return name, at
}

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}
