package fleet

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/clonecd/clonecd/medium"
)

// The states of a node. A node reports Waiting, Cloning, Done or Failed;
// Unknown is what a reader makes of a state.json it cannot read.
const (
	Waiting = "waiting" // asked to reclone, or queued for an image stream
	Cloning = "cloning"
	Done    = "done"
	Failed  = "failed"
	Unknown = "unknown"
)

// The operations a node reports a State for (State.Op).
const (
	OpClone = "clone" // a clone (the empty Op means this too)
	OpSync  = "sync"  // a sync of a running node to a version
)

// Caps on the strings of a State (bytes, after Clean).
const (
	maxStep   = 32
	maxError  = 4096
	maxDetail = 1024
	maxAddr   = 64
	maxTrust  = 64
)

// State is what the master knows about one node, kept in
// NODE/state.json.
type State struct {
	Node     string    `json:"node"`
	Version  string    `json:"version,omitempty"` // the version being cloned, or cloned last
	State    string    `json:"state"`             // waiting, cloning, done, failed (unknown: unreadable)
	Step     string    `json:"step,omitempty"`    // the clone step running (or failed)
	Done     int64     `json:"done,omitempty"`    // image bytes streamed
	Total    int64     `json:"total,omitempty"`   // image size
	Error    string    `json:"error,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	When     time.Time `json:"when"`              // last update (set by the store)
	Started  time.Time `json:"started,omitempty"` // when this clone began
	Log      string    `json:"log,omitempty"`     // path of the uploaded clone.log on the master
	Attempt  int       `json:"attempt,omitempty"`
	Address  string    `json:"address,omitempty"` // the node's address as the server saw it
	Finished time.Time `json:"finished,omitempty"`
	// Trust is how the cloner trusted the version it clones (package
	// trust's Status): "signed by key ID", or "UNSIGNED" when it trusts
	// no key.
	Trust string `json:"trust,omitempty"`
	// Op is what the node is doing: OpClone ("" means a clone too) or
	// OpSync.
	Op string `json:"op,omitempty"`
	// StepStarted is when Step began, by the master's clock (set by the
	// store when a report names a new step).
	StepStarted time.Time `json:"step_started,omitzero"`
}

// Operation is s.Op with "" read as OpClone.
func (s State) Operation() string {
	if s.Op == "" {
		return OpClone
	}
	return s.Op
}

// Percent is Done of Total in percent, or -1 if unknown.
func (s State) Percent() int {
	if s.Total <= 0 {
		return -1
	}
	p := int(s.Done * 100 / s.Total)
	return min(max(p, 0), 100)
}

// Summary is the state as status prints it: waiting, cloning n%, done,
// failed at STEP, unknown (corrupt state.json). It is safe to print.
func (s State) Summary() string {
	step := Clean(s.Step, maxStep)
	switch s.State {
	case Cloning:
		if p := s.Percent(); p >= 0 {
			if step != "" && step != "unpack" {
				return fmt.Sprintf("cloning %d%% (%s)", p, step)
			}
			return fmt.Sprintf("cloning %d%%", p)
		}
		if step != "" {
			return "cloning (" + step + ")"
		}
		return "cloning"
	case Done:
		if s.Op == OpSync {
			return "synced"
		}
	case Failed:
		if step != "" {
			return "failed at " + step
		}
		return "failed"
	case "", Unknown:
		if s.Detail != "" {
			return "unknown (" + Clean(s.Detail, 80) + ")"
		}
		return "unknown"
	}
	return Clean(s.State, 16)
}

// ErrBadState is a reported State the store refuses.
var ErrBadState = errors.New("fleet: bad state")

// Check validates a State a node reports (or the master sets): a valid
// node name, a state that is empty or one a node reports, a version
// that is empty or MAJOR.MINOR, and counters that are not negative.
// Free text is not refused but cleaned and capped by Clean.
func (s State) Check() error {
	if err := ValidName(s.Node); err != nil {
		return fmt.Errorf("%w: %v", ErrBadState, err)
	}
	switch s.State {
	case "", Waiting, Cloning, Done, Failed:
	default:
		return fmt.Errorf("%w: state %.20q is not waiting, cloning, done or failed", ErrBadState, s.State)
	}
	switch s.Op {
	case "", OpClone, OpSync:
	default:
		return fmt.Errorf("%w: op %.20q is not clone or sync", ErrBadState, s.Op)
	}
	if s.Version != "" {
		if err := medium.ValidVersion(s.Version); err != nil {
			return fmt.Errorf("%w: %v", ErrBadState, err)
		}
	}
	if s.Done < 0 || s.Total < 0 || s.Attempt < 0 || s.Attempt > 1000 {
		return fmt.Errorf("%w: negative or absurd counters (done %d, total %d, attempt %d)", ErrBadState, s.Done, s.Total, s.Attempt)
	}
	return nil
}

// Clean returns s with its free text stripped of control characters and
// capped (see the package function Clean), and an Address that is not an
// IP address dropped.
func (s State) Clean() State {
	s.Step = Clean(s.Step, maxStep)
	s.Error = Clean(s.Error, maxError)
	s.Detail = Clean(s.Detail, maxDetail)
	s.Log = Clean(s.Log, maxDetail)
	s.Trust = Clean(s.Trust, maxTrust)
	if s.Address != "" && net.ParseIP(s.Address) == nil {
		s.Address = ""
	}
	s.Address = Clean(s.Address, maxAddr)
	return s
}

// merge applies upd to cur: empty fields of upd keep the old values,
// except that a new state clears a stale error and "waiting" after a
// finished clone starts a new one.
func merge(cur, upd State, now time.Time) State {
	if upd.State != "" && upd.State != cur.State {
		if upd.State == Waiting && cur.State != Waiting && cur.State != Cloning {
			// A new clone begins: forget the last one's details.
			cur = State{Node: cur.Node, Version: cur.Version, Log: cur.Log, Started: now}
		}
		if cur.State == Done || cur.State == "" || cur.State == Unknown {
			// A new operation: a clone unless it says otherwise.
			cur.Op, cur.StepStarted = upd.Op, time.Time{}
		}
		if upd.State != Failed {
			cur.Error = ""
		}
		if upd.State == Cloning && cur.Started.IsZero() {
			cur.Started = now
		}
		if upd.State == Cloning && cur.State == Failed {
			// The cloner tries again: a new attempt, from the start.
			cur.Done, cur.Total, cur.Step, cur.StepStarted = 0, 0, "", time.Time{}
			if upd.Attempt == 0 {
				cur.Attempt = max(cur.Attempt, 1) + 1
			}
		}
		if upd.State == Done || upd.State == Failed {
			cur.Finished = now
		}
		cur.State = upd.State
	}
	if cur.State == Unknown {
		cur.State, cur.Detail = "", ""
	}
	if upd.Version != "" {
		cur.Version = upd.Version
	}
	if upd.Step != "" && (upd.Step != cur.Step || cur.StepStarted.IsZero()) {
		cur.StepStarted = now
	}
	if upd.Step != "" {
		cur.Step = upd.Step
	}
	if upd.Op != "" {
		cur.Op = upd.Op
	}
	if upd.Total != 0 {
		cur.Total = upd.Total
	}
	if upd.Done != 0 || upd.Total != 0 {
		cur.Done = upd.Done
	}
	if upd.Error != "" {
		cur.Error = upd.Error
	}
	if upd.Detail != "" || upd.State != "" {
		cur.Detail = upd.Detail
	}
	if upd.Log != "" {
		cur.Log = upd.Log
	}
	if upd.Attempt != 0 {
		cur.Attempt = upd.Attempt
	}
	if upd.Address != "" {
		cur.Address = upd.Address
	}
	if upd.Trust != "" {
		cur.Trust = upd.Trust
	}
	if !upd.Started.IsZero() {
		cur.Started = upd.Started
	}
	cur.When = now
	return cur
}
