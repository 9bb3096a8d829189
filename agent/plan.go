package agent

import "time"

// Intents a Plan can carry. Every request yields exactly one.
const (
	IntentCreate = "create_task" // make a new task from the request
	IntentList   = "list_tasks"  // show the user's tasks
	IntentPause  = "pause_task"  // pause an existing task
	IntentResume = "resume_task" // resume a paused task
	IntentDelete = "delete_task" // delete or cancel an existing task
	IntentRun    = "run_task"    // run an existing task now
	IntentChat   = "chat"        // no task: answer as a conversation
)

// Kinds of task a create_task plan can describe.
const (
	KindPeriodic    = "periodic"     // runs on a cron schedule
	KindOneShot     = "one_shot"     // runs once, at a time
	KindMonitor     = "monitor"      // polls a source and judges a condition
	KindLongRunning = "long_running" // many checkpointed steps, such as a report
)

// Domains a create_task plan can belong to; each picks the task agent's tools.
const (
	DomainWeather  = "weather"
	DomainPrice    = "price"
	DomainNews     = "news"
	DomainReminder = "reminder"
	DomainWeb      = "web"
	DomainReport   = "report"
)

// Slot names used in Plan.Slots and Plan.Missing. SlotTime only ever appears
// in Missing: a resolved time is the Plan's Schedule.
const (
	SlotCity      = "city"
	SlotMessage   = "message"
	SlotTopic     = "topic"
	SlotURL       = "url"
	SlotSymbol    = "symbol"
	SlotThreshold = "threshold"
	SlotPercent   = "percent"
	SlotDirection = "direction"
	SlotTime      = "time"
)

// Request is one user utterance with the context needed to resolve times.
// TZ is the user's IANA zone (nil means UTC); Now is the moment the user
// spoke, against which "tomorrow" or "in 2 hours" are resolved (the zero
// time means the wall clock, which makes the plan depend on when it ran).
type Request struct {
	Text string
	TZ   *time.Location
	Now  time.Time
}

// Plan is what the planner makes of a request, in the JSON shape of
// shared/fixtures/README.md. Kind, Domain and Schedule are set for
// create_task only. Slots holds city, message, topic, url and symbol as
// strings, threshold and percent as numbers and direction as "up" or "down".
// Missing lists the required slots the request did not give ("time" when a
// reminder or periodic task has no time); it is an empty list, never null,
// when nothing is missing, and Question then is empty too.
type Plan struct {
	Intent    string         `json:"intent"`
	Kind      string         `json:"kind,omitempty"`
	Domain    string         `json:"domain,omitempty"`
	Schedule  *Schedule      `json:"schedule,omitempty"`
	Slots     map[string]any `json:"slots,omitempty"`
	Missing   []string       `json:"missing"`
	Question  string         `json:"question,omitempty"`
	Language  string         `json:"language"`
	Reasoning string         `json:"reasoning"`
}

// Schedule says when a task fires. Exactly one field is set: Cron, five
// fields (minute hour day-of-month month day-of-week) read in the request's
// zone; At, one instant carrying the request's zone offset; or Every, a Go
// duration string such as "15m" or "1h", the poll interval of a monitor.
type Schedule struct {
	Cron  string     `json:"cron,omitempty"`
	At    *time.Time `json:"at,omitempty"`
	Every string     `json:"every,omitempty"`
}
