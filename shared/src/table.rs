//! Plain-text tables for terminals, phones and logs (comfy-table): aligned columns, a rule
//! under the header, no colour or terminal codes. The CLI sets the terminal's width once, and
//! tables wider than it wrap their longest cells.

use comfy_table::{ContentArrangement, LineStyle, Table, TableStyle};
use std::sync::OnceLock;

static WIDTH: OnceLock<u16> = OnceLock::new();

/// Wrap every table this process renders to `columns` (the CLI passes its terminal's width).
pub fn wrap_to(columns: u16) {
    let _ = WIDTH.set(columns);
}

const STYLE: TableStyle = TableStyle::new()
    .header_lines(comfy_table::ContentLineStyle::none().junction(' '))
    .content_lines(comfy_table::ContentLineStyle::none().junction(' '))
    .header_separator(LineStyle::none().fill('-').junction(' '));

pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    render_within(headers, rows, WIDTH.get().copied())
}

fn render_within(headers: &[&str], rows: &[Vec<String>], width: Option<u16>) -> String {
    let mut table = Table::new();
    table.load_style(STYLE).set_header(headers).add_rows(rows);
    if let Some(width) = width {
        table
            .set_width(width)
            .set_content_arrangement(ContentArrangement::Dynamic);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 1));
    }
    table.lines().map(|line| line.trim_end().to_string() + "\n").collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let t = super::render(
            &["DB", "STATUS"],
            &[
                vec!["orders".into(), "copied".into()],
                vec!["a".into(), "queued".into()],
            ],
        );
        assert_eq!(t, "DB      STATUS\n------- -------\norders  copied\na       queued\n");
    }

    #[test]
    fn a_table_wider_than_the_terminal_wraps_its_longest_cell() {
        let detail = "replica lag 412 s, over the 300 s budget since 18:30Z";
        let t = super::render_within(&["DB", "DETAIL"], &[vec!["orders".into(), detail.into()]], Some(30));
        assert!(t.lines().all(|l| l.chars().count() <= 30), "{t}");
        assert!(t.lines().count() > 3, "the detail wrapped onto more lines: {t}");
        let words: Vec<&str> = t
            .split_whitespace()
            .filter(|w| detail.split(' ').any(|d| d == *w))
            .collect();
        assert_eq!(words.join(" "), detail, "no word lost: {t}");
    }
}
