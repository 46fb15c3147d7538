"""Engagement figures, privacy first (docs/engagement.md).

- ``links.rewrite_links`` / ``links.reader_part``: the hooks into rendering and personalising
  a campaign's email (newsletter.emails);
- ``views.tracked_link``: ``/r/<token>/``, the redirect (and the open pixel);
- ``events.flush_events``: Redis stream -> classified ``ClickEvent`` rows (beat);
- ``rollup.roll_up`` / ``record_outcome`` / ``forget_reader``: retention, attribution, erasure;
- ``figures.campaign_figures``: what the admin, the article's box and the API show.
"""
