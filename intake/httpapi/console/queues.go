package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/sessions"
)

// The admin's queues page: how many tasks each asynq queue holds in each
// state, the failed ones (waiting to retry, or archived after their last
// try) with their type, error, last failure and ids, and a retry button
// for each. Task payloads carry ids only, and so does the page.

// Tasks are what the queues page reads and does in asynq (its Inspector,
// wired in cmd/leadgate). asynq's inspector takes no context.
type Tasks interface {
	// Sizes counts the tasks of every queue leadgate uses, by state.
	Sizes() ([]QueueSize, error)
	// Failed lists up to limit tasks of queue waiting to retry and up to
	// limit archived ones.
	Failed(queue string, limit int) ([]Task, error)
	// Task reads one task; an unknown one is an intake.ENotFound error.
	Task(queue, id string) (*Task, error)
	// Run moves a task waiting to retry, or archived, to run now.
	Run(queue, id string) error
	// Delete removes a task that is not running.
	Delete(queue, id string) error
}

// QueueSize is one queue's task counts by state.
type QueueSize struct {
	Queue                                                  string
	Pending, Active, Scheduled, Retry, Archived, Completed int
}

// The states of a failed task.
const (
	TaskRetry    = "retry"    // failed, tries again later
	TaskArchived = "archived" // failed for good, or out of tries
)

// Task is one task as the page shows it: what asynq knows of it and the
// ids its payload names (payloads carry ids only).
type Task struct {
	Queue, ID, Type, State string
	LeadID, CampaignID     string
	Error                  string
	FailedAt               time.Time
	Retried, MaxRetry      int
}

// routeLead is the task type whose outcome is the lead's state (jobs.RouteLead):
// it is retried through the lead's redrive.
const routeLead = "lead:route"

// failedShown is how many failed tasks of each state and queue the page
// lists, newest failure first.
const failedShown = 50

// taskRow is a failed task as the page shows it.
type taskRow struct {
	Task
	State, FailedAt, Retry string
	LeadHref               string
}

// queuesData is the queues page's content.
type queuesData struct {
	Sizes  []QueueSize
	Failed []taskRow
}

// queueHealth is the admin home page's summary: failed tasks by queue.
type queueHealth struct {
	Failed int
	Queues []QueueSize // those with failed tasks
}

// homePage is the home page's content: what Home (leads.go) gathers for
// every role, and for the admin role the queues' health.
type homePage struct {
	homeData
	Health *queueHealth
}

// withQueueHealth adds the queues' health to the admin role's home page.
// A queue that cannot be read leaves the section out rather than the page:
// the rest of the home page is still worth showing.
func (c *Console) withQueueHealth(r *http.Request, ss *sessions.Session, d homeData) homePage {
	p := homePage{homeData: d}
	if ss == nil || !ss.Role.Permits(intake.RoleAdmin) {
		return p
	}
	sizes, err := c.Tasks.Sizes()
	if err != nil {
		c.Log.Error("console: queue sizes for the home page", "err", err)
		return p
	}
	p.Health = &queueHealth{}
	for _, s := range sizes {
		if n := s.Retry + s.Archived; n > 0 {
			p.Health.Failed += n
			p.Health.Queues = append(p.Health.Queues, s)
		}
	}
	return p
}

// Queues answers GET /admin/queues: task counts by queue and state, and
// the failed tasks. ?done= names the retry just made, for its notice.
func (c *Console) Queues(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	sizes, err := c.Tasks.Sizes()
	if err != nil {
		c.storeError(w, r, ss, intake.Unavailable("read queue sizes", err))
		return
	}
	d := queuesData{Sizes: sizes}
	for _, s := range sizes {
		if s.Retry+s.Archived == 0 {
			continue
		}
		failed, err := c.Tasks.Failed(s.Queue, failedShown)
		if err != nil {
			c.storeError(w, r, ss, intake.Unavailable("list failed tasks", err))
			return
		}
		for _, t := range failed {
			row := taskRow{Task: t, State: msg(lang, "console.admin.queues.state_"+t.State), FailedAt: when(t.FailedAt),
				Retry: "/admin/queues/" + url.PathEscape(t.Queue) + "/tasks/" + url.PathEscape(t.ID) + "/retry?lang=" + string(lang)}
			if t.LeadID != "" {
				row.LeadHref = "/admin/leads/" + url.PathEscape(t.LeadID) + "?lang=" + string(lang)
			}
			d.Failed = append(d.Failed, row)
		}
	}
	slices.SortStableFunc(d.Failed, func(a, b taskRow) int { return b.Task.FailedAt.Compare(a.Task.FailedAt) })
	var notice string
	switch done := r.URL.Query().Get("done"); done {
	case "retried", "redriven":
		notice = msg(lang, "console.admin.queues.notice_"+done)
	}
	c.render(w, r, ss, http.StatusOK, "queues", "queues", nil, notice, d)
}

// RetryTask answers POST /admin/queues/{queue}/tasks/{task}/retry: a
// failed task runs again, then back to the queues page with a notice.
//
// A lead:route task is retried through the lead's redrive, as POST
// /admin/leads/{id}/redrive does it, since the lead's state — not asynq's
// archive, which is trimmed — is the truth about it: a failed (or held)
// lead becomes received, its old task is deleted and a new one queued, so
// the lead is never routed twice. A lead still received is waiting for
// exactly this task, which then runs now; a lead routed, blocked or gone
// meanwhile has nothing to retry (409). Other tasks run again as they are.
func (c *Console) RetryTask(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	t, err := c.Tasks.Task(r.PathValue("queue"), r.PathValue("task"))
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	auditTarget(r, t.ID) // the task's kind and record ids: nothing personal
	if t.State != TaskRetry && t.State != TaskArchived {
		c.errorPage(w, r, ss, http.StatusConflict, "task_409")
		return
	}
	done := "retried"
	if t.Type == routeLead && t.LeadID != "" {
		done, err = c.redriveTask(r, ss, t)
	} else {
		err = c.Tasks.Run(t.Queue, t.ID)
	}
	var ie *intake.Error
	if errors.As(err, &ie) && ie.Code == intake.EConflict {
		c.errorPage(w, r, ss, http.StatusConflict, "task_lead_409")
		return
	}
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	c.Log.Info("task retried from the console", "task", t.ID, "queue", t.Queue, "how", done, "by", ss.Name)
	http.Redirect(w, r, "/admin/queues?"+url.Values{"lang": {string(lang)}, "done": {done}}.Encode(), http.StatusSeeOther)
}

// redriveTask retries the lead:route task t through its lead's redrive
// (RetryTask), saying how: "redriven" or "retried".
func (c *Console) redriveTask(r *http.Request, ss *sessions.Session, t *Task) (string, error) {
	prev, err := c.Deps.Leads.Redrive(r.Context(), t.LeadID)
	if intake.ErrorCode(err) == intake.EConflict && prev == intake.Received {
		return "retried", c.Tasks.Run(t.Queue, t.ID)
	}
	if err != nil {
		return "", err
	}
	c.Log.Info("lead redriven from the console's queues", "lead", t.LeadID, "from", prev, "by", ss.Name)
	// The old task goes before the new one is queued: both have the id
	// the lead's id gives, and a task left waiting to retry would keep
	// the new one out.
	if err := c.Tasks.Delete(t.Queue, t.ID); err != nil && intake.ErrorCode(err) != intake.ENotFound {
		c.Log.Error("console: the redriven lead's old task was not deleted", "task", t.ID, "err", err)
	}
	if err := c.Queue.EnqueueLead(r.Context(), t.LeadID); err != nil {
		// The lead is received again: the sweeper queues it within minutes.
		c.Log.Error("console redrive: requeue failed; the sweeper will queue the lead", "lead", t.LeadID, "err", err)
	}
	return "redriven", nil
}
