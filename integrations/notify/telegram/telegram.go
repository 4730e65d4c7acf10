// Package telegram sends sales notifications to one Telegram chat through the
// Bot API's sendMessage method (https://core.telegram.org/bots/api#sendmessage).
//
// A call is POST {apiURL}/bot<token>/sendMessage with a JSON body; Telegram
// answers {"ok":true,"result":<Message>} or
//
//	{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}
//
// The bot token is part of the request path, so neither the URL nor the token
// ever appears in an error: failures are *integrations.Error values that name
// only the system, the operation, the status and a fixed code.
package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paymtech/leadgate/integrations"
)

// System is the name this client gives its errors; it is also what a lead's
// disclosure log records as the recipient of a notification.
const System = "telegram"

// DefaultAPIURL is the Bot API server New uses when given no URL.
const DefaultAPIURL = "https://api.telegram.org"

// op names the one Bot API method this client calls, in its errors.
const op = "sendMessage"

// maxAnswer bounds how much of an answer is read: a sendMessage result is a
// few kilobytes, and a misbehaving proxy must not make us buffer more.
const maxAnswer = 1 << 20

// Client sends messages to one chat as one bot. It is safe for concurrent use.
type Client struct {
	endpoint string // the sendMessage URL, token included: never logged, never in an error
	chatID   any    // json.Number for a numeric id, string for a "@channel" username
	client   *http.Client
}

// New returns a Client that posts to chatID (a numeric chat id such as
// "-1001234567890", or "@channelusername") as the bot with botToken
// ("<bot id>:<secret>", as @BotFather issues it). An empty apiURL means
// DefaultAPIURL; another one (a local Bot API server, a test fake) must be an
// absolute http or https URL without query. A nil client means
// integrations.NewHTTPClient(0); redirects are never followed, whatever
// client is given (integrations.NoRedirects).
//
// Errors never quote the URL or the token.
func New(apiURL, botToken, chatID string, client *http.Client) (*Client, error) {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("telegram: API URL must be an absolute http or https URL without query")
	}
	if !validToken(botToken) {
		return nil, errors.New("telegram: bot token must look like <bot id>:<secret>")
	}
	c := &Client{endpoint: strings.TrimSuffix(apiURL, "/") + "/bot" + botToken + "/sendMessage", client: integrations.NoRedirects(client)}
	switch {
	case validChatID(chatID):
		c.chatID = json.Number(chatID)
	case validChannel(chatID):
		c.chatID = chatID
	default:
		return nil, errors.New("telegram: chat id must be a number or @channelusername")
	}
	return c, nil
}

// validToken reports whether t has the shape of a bot token: digits, a
// colon, then letters, digits, '-' and '_'. Anything else could not be put
// in a URL path unescaped, and is certainly a configuration mistake.
func validToken(t string) bool {
	id, secret, ok := strings.Cut(t, ":")
	if !ok || !allDigits(id) || secret == "" {
		return false
	}
	for _, c := range []byte(secret) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validChatID reports whether id is a chat's numeric id: groups and channels
// are negative ("-100…"), users positive.
func validChatID(id string) bool {
	return allDigits(strings.TrimPrefix(id, "-"))
}

// validChannel reports whether name is a public channel's "@username"
// (5 to 32 letters, digits and underscores).
func validChannel(name string) bool {
	user, ok := strings.CutPrefix(name, "@")
	if !ok || len(user) < 5 || len(user) > 32 {
		return false
	}
	for _, c := range []byte(user) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// sendMessage is the request body. chat_id is "Integer or String" in the Bot
// API: a number for numeric ids, the "@username" string for channels.
type sendMessage struct {
	ChatID                any    `json:"chat_id"`
	Text                  string `json:"text"`
	ParseMode             string `json:"parse_mode"`
	DisableWebPagePreview bool   `json:"disable_web_page_preview"`
}

// answer is the Bot API's reply envelope
// (https://core.telegram.org/bots/api#making-requests and
// #responseparameters). The result itself is not needed.
type answer struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// Send posts text (Telegram HTML, as Message builds it) to the chat, with
// link previews off so a CRM link does not unfurl.
//
// Failures are *integrations.Error values with System "telegram" and Op
// "sendMessage", classified by the Bot API's error_code (the HTTP status
// when the answer has none): flood control (429, or any answer with
// parameters.retry_after) is RateLimited with RetryAfter from the body;
// 408 and 5xx are Temporary, and so is any 3xx answer (a redirect, never
// followed, whatever its body says); other 4xx — chat not found, bot
// blocked or removed, bad token — are Permanent, with Code naming the
// common causes ("chat_not_found", "bot_blocked", "bot_kicked",
// "chat_migrated", "bad_html"). Empty text is refused as Permanent without
// a call.
func (c *Client) Send(ctx context.Context, text string) error {
	if strings.TrimSpace(text) == "" {
		return &integrations.Error{System: System, Op: op, Code: "empty text", Kind: integrations.Permanent}
	}
	body, err := json.Marshal(sendMessage{ChatID: c.chatID, Text: text, ParseMode: "HTML", DisableWebPagePreview: true})
	if err != nil {
		return &integrations.Error{System: System, Op: op, Code: "unencodable message", Kind: integrations.Permanent, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		// The URL parsed in New, so only a nil context gets here; the
		// cause is left out because net/http quotes the URL, token and all.
		return &integrations.Error{System: System, Op: op, Code: "invalid request", Kind: integrations.Permanent}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "leadgate")

	resp, err := c.client.Do(req)
	if err != nil {
		return integrations.Transport(System, op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var ans answer
	decoded, err := integrations.ReadAnswer(ctx, System, op, resp.Body, maxAnswer, &ans)
	if err != nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// Cut off, a 2xx cannot say whether the message went out, nor
		// what the Bot API made of it. A cut-off refusal is judged by its
		// status and headers (failure), as an unreadable one is.
		return err
	}
	if decoded && ans.OK && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	return failure(resp, ans, decoded)
}

// failure classifies an answer that is not {"ok":true}. Nothing of the
// description goes into the error: Code is one of a few fixed words.
func failure(resp *http.Response, ans answer, decoded bool) error {
	if integrations.IsRedirect(resp.StatusCode) {
		// A redirect, never followed: the message did not go out, and the
		// body is the redirecting server's, not the Bot API's, so nothing
		// in it (error_code, retry_after) may change the common rule.
		return integrations.Check(System, op, resp)
	}
	code := resp.StatusCode
	if decoded && ans.ErrorCode != 0 {
		// The Bot API's error_code is the one to go by: it is the HTTP
		// status on api.telegram.org, and the only signal when a proxy or
		// a local Bot API server answers 200 with "ok":false.
		code = ans.ErrorCode
	}
	if code >= 200 && code <= 299 {
		// A 2xx with an unreadable body or "ok":false and no code: the
		// message may or may not have gone out, and a duplicate
		// notification is cheaper than a lost lead.
		return &integrations.Error{System: System, Op: op, Status: resp.StatusCode, Code: "malformed answer", Kind: integrations.Temporary}
	}
	// The common rule applied to error_code, with the Retry-After header
	// (if any) still read from the real answer.
	e, _ := errors.AsType[*integrations.Error](integrations.Check(System, op, &http.Response{StatusCode: code, Header: resp.Header}))
	e.Status = resp.StatusCode
	if ans.Parameters.RetryAfter > 0 {
		// Flood control says how long in the body, not in a header.
		e.Kind = integrations.RateLimited
		e.RetryAfter = time.Duration(ans.Parameters.RetryAfter) * time.Second
	}
	e.Code = reason(code, resp.StatusCode, ans)
	return e
}

// reasons maps phrases of the Bot API's descriptions to fixed codes, so an
// operator can tell a wrong chat id from a bot that was removed from it
// without the description itself reaching a log.
var reasons = []struct{ phrase, code string }{
	{"chat not found", "chat_not_found"},
	{"bot was blocked", "bot_blocked"},
	{"bot was kicked", "bot_kicked"},
	{"can't parse entities", "bad_html"},
}

// reason picks the Code of a failed answer: a known cause, else the Bot
// API's error_code when it differs from the HTTP status, else nothing.
func reason(code, status int, ans answer) string {
	if ans.Parameters.MigrateToChatID != 0 {
		// The group became a supergroup: TELEGRAM_CHAT_ID needs the new id.
		return "chat_migrated"
	}
	d := strings.ToLower(ans.Description)
	for _, r := range reasons {
		if strings.Contains(d, r.phrase) {
			return r.code
		}
	}
	if code != status {
		return "error_code " + strconv.Itoa(code)
	}
	return ""
}
