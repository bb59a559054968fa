"""The WhatsApp channel, on the WhatsApp Business Cloud API (Graph API over HTTP).

One module per concern, as the channel seam will want them:

* `channel`: `WhatsAppChannel`, the seam's `Channel` (parse, render, send_reply);
* `parse`: a webhook body -> `Incoming` (and status reports, and what the bot cannot read);
* `words`: commands typed as words in each language, read from the catalogs;
* `render`: a `Reply` -> Cloud API message payloads, within WhatsApp's limits;
* `window`: whether a free-form message may reach a person (the 24-hour window);
* `templates`: the utility templates sent when it may not, and their submission format;
* `client`: the Graph API over httpx, its errors in the outbox's neutral terms;
* `deliver`: outbox rows -> WhatsApp (free-form or template);
* `webhook`: GET/POST /whatsapp, applied through the Dispatcher before the 2xx.
"""

CHANNEL = "whatsapp"
