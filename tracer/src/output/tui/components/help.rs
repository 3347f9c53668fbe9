//! `?`: the keys and the filter syntax, over the list.

use ratatui::{
    layout::Rect,
    widgets::{Block, Borders, Clear, Paragraph},
    Frame,
};

const HELP: &str = "\
Up/Down, j/k     move the selection (the last row follows the newest)
PgUp/PgDn        a page up/down          g/G, Home/End   first/last row
mouse wheel      scroll                  Enter           detail pane on/off
J/K              scroll the detail pane  Esc             close help/detail; drop filter
/                filter as you type (Enter keeps it, Esc undoes the edit)
space            pause/resume the view   s               sort: time, latency, status
c                clear the list          q, Ctrl-C       quit

Filter: space-separated terms, all must match; `!term` negates.
  GET  /api  curl          a word in the method, host+target or comm
  status>=500  status=4xx  5xx
  latency>100ms  latency<=2s  lat>250us
  method=POST  path~/api  path=/  host~example  comm=curl  pid=42
  role=server  size>1K      (= equals, != differs, ~ or : contains)

Any key closes this help.";

pub fn draw(f: &mut Frame, area: Rect) {
    let w = 92.min(area.width);
    let h = 21.min(area.height);
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, popup);
    f.render_widget(Paragraph::new(HELP).block(Block::default().borders(Borders::ALL).title(" help ")), popup);
}
