"""The Slack transport: a Bolt AsyncApp that turns Slack events into Invocations
and Replies into Block Kit.

Modules, one concept each: `edge` (what Slack sends: bodies, shapes, command text,
who asked), `blocks` (Reply -> Block Kit, the one renderer), `pages` (the "More"
pages of long tables, in memory), `directory` (names of people and channels),
`notifier` (posting once, editing, uploading; the tracker's Notifier), `delivery`
(where a Reply goes), `runtime` (what listeners share, how a command runs),
`commands` / `actions` / `views` / `home` / `secret_prompt` (listeners), `decisions`
(approvals), `sweep` (approval expiry), `metrics`, `app` (build_app), `server`
(HTTP: /slack/events, /healthz, /metrics), `socket` (Socket Mode), `serve` (the
entry point).
"""
