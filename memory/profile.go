package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
)

// Profile is a user's long-term memory: what every agent acting for the user
// may assume without asking ("my city" is HomeCity), and when not to
// disturb them. Every field is optional; the zero value is an empty profile.
type Profile struct {
	// HomeCity is the user's city, in their own words ("北京", "Hangzhou").
	HomeCity string `json:"home_city,omitempty"`
	// Language is the language agents answer in: "en" or "zh".
	Language string `json:"language,omitempty"`
	// TimeZone is an IANA time zone name such as "Asia/Shanghai".
	TimeZone string `json:"time_zone,omitempty"`
	// QuietHours is when notifications wait, in TimeZone.
	QuietHours *QuietHours `json:"quiet_hours,omitempty"`
	// Preferences are free key-value settings ("units": "metric").
	Preferences map[string]string `json:"preferences,omitempty"`
	// UpdatedAt is when the profile was last written; PutProfile sets it
	// and ignores what it is given.
	UpdatedAt time.Time `json:"updated_at"`
}

// QuietHours is a daily span of local time, "HH:MM" to "HH:MM" (24-hour
// clock). Start is inside the span and End is not; a span whose End is not
// after its Start runs over midnight ("22:00" to "07:00").
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Profile limits.
const (
	MaxHomeCity       = 200  // runes
	MaxPreferences    = 64   // entries
	MaxPreferenceKey  = 64   // runes
	MaxPreferenceText = 1024 // runes per value
)

// Languages are the values Profile.Language accepts.
var Languages = []string{"en", "zh"}

// Validate reports the first field of p that is not acceptable, as a
// vigil.Invalid error naming it (home_city, language, time_zone,
// quiet_hours.start, quiet_hours.end, preferences).
func (p Profile) Validate() error {
	if n := utf8.RuneCountInString(p.HomeCity); n > MaxHomeCity {
		return vigil.FieldError("home_city", "at most %d characters, got %d", MaxHomeCity, n)
	}
	if p.Language != "" && !slices.Contains(Languages, p.Language) {
		return vigil.FieldError("language", "must be one of %s, got %q", strings.Join(Languages, ", "), p.Language)
	}
	if p.TimeZone != "" {
		if _, err := loadZone(p.TimeZone); err != nil {
			return vigil.FieldError("time_zone", "%q is not an IANA time zone such as Asia/Shanghai", p.TimeZone)
		}
	}
	if q := p.QuietHours; q != nil {
		if _, ok := parseClock(q.Start); !ok {
			return vigil.FieldError("quiet_hours.start", "must be HH:MM (00:00 to 23:59), got %q", q.Start)
		}
		if _, ok := parseClock(q.End); !ok {
			return vigil.FieldError("quiet_hours.end", "must be HH:MM (00:00 to 23:59), got %q", q.End)
		}
		if q.Start == q.End {
			return vigil.FieldError("quiet_hours.end", "must differ from start (%s)", q.Start)
		}
	}
	if len(p.Preferences) > MaxPreferences {
		return vigil.FieldError("preferences", "at most %d entries, got %d", MaxPreferences, len(p.Preferences))
	}
	for k, v := range p.Preferences {
		if k == "" || utf8.RuneCountInString(k) > MaxPreferenceKey {
			return vigil.FieldError("preferences", "keys must be 1 to %d characters, got %q", MaxPreferenceKey, k)
		}
		if utf8.RuneCountInString(v) > MaxPreferenceText {
			return vigil.FieldError("preferences."+k, "at most %d characters", MaxPreferenceText)
		}
	}
	return nil
}

// loadZone is time.LoadLocation without the names that are not zones:
// "Local" (whatever the server's zone is) and "" (UTC).
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, errors.New("not a zone name")
	}
	return time.LoadLocation(name)
}

// parseClock reads "HH:MM" into minutes after midnight.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	digit := func(b byte) (int, bool) { return int(b - '0'), b >= '0' && b <= '9' }
	h1, ok1 := digit(s[0])
	h2, ok2 := digit(s[1])
	m1, ok3 := digit(s[3])
	m2, ok4 := digit(s[4])
	h, m := h1*10+h2, m1*10+m2
	if !ok1 || !ok2 || !ok3 || !ok4 || h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// Location returns the profile's time zone, or nil if it has none (or an
// unknown one).
func (p Profile) Location() *time.Location {
	loc, err := loadZone(p.TimeZone)
	if err != nil {
		return nil
	}
	return loc
}

// Quiet reports whether t falls in the profile's quiet hours, read in the
// profile's time zone (in t's own zone when the profile has none). A
// profile without quiet hours is never quiet.
func (p Profile) Quiet(t time.Time) bool {
	if p.QuietHours == nil {
		return false
	}
	start, ok1 := parseClock(p.QuietHours.Start)
	end, ok2 := parseClock(p.QuietHours.End)
	if !ok1 || !ok2 || start == end {
		return false
	}
	if loc := p.Location(); loc != nil {
		t = t.In(loc)
	}
	now := t.Hour()*60 + t.Minute()
	if start < end {
		return now >= start && now < end
	}
	return now >= start || now < end
}

// profileOwner returns the principal whose profile a call reads or writes:
// the principal of ctx, which must name a tenant and a user.
func (s *Service) profileOwner(ctx context.Context) (vigil.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return vigil.Principal{}, err
	}
	if !vigil.ValidID(p.User) {
		return vigil.Principal{}, vigil.Errorf(vigil.Forbidden, "a profile belongs to a user, and the request acts for none")
	}
	if len(s.keys) == 0 {
		return vigil.Principal{}, vigil.Errorf(vigil.Unavailable, "long-term memory is off: no memory.key is configured")
	}
	return p, nil
}

func noProfile(user string) error {
	return vigil.Errorf(vigil.NotFound, "no profile for user %s", user)
}

// Profile returns the profile of the principal's own user, or a
// vigil.NotFound error if they have none. A profile that does not open
// under the configured keys is an error wrapping ErrDecrypt.
func (s *Service) Profile(ctx context.Context) (Profile, error) {
	p, err := s.profileOwner(ctx)
	if err != nil {
		return Profile{}, err
	}
	sealed, err := s.store.GetProfile(ctx, p.Tenant, p.User)
	if vigil.ErrorCode(err) == vigil.NotFound {
		return Profile{}, noProfile(p.User)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("memory: profile of %s: %w", p.User, err)
	}
	plain, err := s.open(p.Tenant, p.User, sealed)
	if err != nil {
		return Profile{}, err
	}
	var prof Profile
	if err := json.Unmarshal(plain, &prof); err != nil {
		return Profile{}, fmt.Errorf("memory: profile of %s: decode: %w", p.User, err)
	}
	return prof, nil
}

// ProfileOf returns the profile of user, who must be the principal's own
// user: an agent acting for a task's owner asks for the owner's profile
// and gets it only while it acts for that owner. Asking for anyone else's is
// a vigil.NotFound error, as if there were none, so that the answer does not
// tell whether another user has a profile.
func (s *Service) ProfileOf(ctx context.Context, user string) (Profile, error) {
	if p, ok := vigil.PrincipalFrom(ctx); !ok || p.User != user {
		if _, err := principal(ctx); err != nil {
			return Profile{}, err
		}
		return Profile{}, noProfile(user)
	}
	return s.Profile(ctx)
}

// PutProfile validates prof, stamps UpdatedAt and stores it, sealed, as the
// profile of the principal's own user, replacing the one before. It
// returns the profile as stored.
func (s *Service) PutProfile(ctx context.Context, prof Profile) (Profile, error) {
	p, err := s.profileOwner(ctx)
	if err != nil {
		return Profile{}, err
	}
	if err := prof.Validate(); err != nil {
		return Profile{}, err
	}
	if len(prof.Preferences) == 0 {
		prof.Preferences = nil
	}
	prof.UpdatedAt = s.now().UTC()
	plain, err := json.Marshal(prof)
	if err != nil {
		return Profile{}, fmt.Errorf("memory: profile of %s: encode: %w", p.User, err)
	}
	sealed, err := s.seal(p.Tenant, p.User, plain)
	if err != nil {
		return Profile{}, err
	}
	if err := s.store.PutProfile(ctx, p.Tenant, p.User, sealed); err != nil {
		return Profile{}, fmt.Errorf("memory: put profile of %s: %w", p.User, err)
	}
	return prof, nil
}

// DeleteProfile forgets the profile of the principal's own user. Deleting
// a profile that does not exist is not an error.
func (s *Service) DeleteProfile(ctx context.Context) error {
	p, err := s.profileOwner(ctx)
	if err != nil {
		return err
	}
	if err := s.store.DeleteProfile(ctx, p.Tenant, p.User); err != nil {
		return fmt.Errorf("memory: delete profile of %s: %w", p.User, err)
	}
	return nil
}
