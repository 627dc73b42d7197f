"""The Slack transport: a Bolt AsyncApp that turns Slack events into Invocations
and Replies into Block Kit.

Modules, one concept each: `blocks` (Reply -> Block Kit), `pages` (the "More"
pages of long tables, in memory), `notifier` (SlackNotifier for the tracker),
`runtime` (what listeners share), `commands` / `actions` / `views` / `home`
(listeners), `sweep` (approval expiry), `metrics`, `app` (build_app),
`server` (HTTP mode: /slack/events, /healthz, /metrics), `serve` (the entry point).
"""
