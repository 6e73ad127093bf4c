//! PNG output of the plots (feature `png`): the plot's SVG rendered by resvg with DejaVu Sans
//! embedded in the binary, so that a machine without fonts draws the same labels. Every
//! font family the SVG names falls back to it.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

/// The font database: DejaVu Sans regular and bold, the default of every generic family.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    Arc::clone(DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        for set in [
            usvg::fontdb::Database::set_sans_serif_family,
            usvg::fontdb::Database::set_serif_family,
            usvg::fontdb::Database::set_monospace_family,
        ] {
            set(&mut db, "DejaVu Sans");
        }
        Arc::new(db)
    }))
}

/// Render `svg` as a PNG image `scale` times its size in pixels, on a white background.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, String> {
    if !(scale.is_finite() && scale > 0.0 && scale <= 8.0) {
        return Err(format!("the PNG scale must be in (0, 8], not {scale}"));
    }
    let opt = usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: fonts(),
        ..Default::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("invalid SVG: {e}"))?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("cannot allocate a {w} x {h} image"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PNG signature, IHDR size, and the text drawn in black on white.
    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="50" font-family="Helvetica, Arial, sans-serif"><text x="10" y="35" font-size="30">Rate Hz</text></svg>"#;
        let png = svg_to_png(svg, 2.0).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (400, 100));
        // Decode through tiny-skia and count dark pixels: the glyphs must be there.
        let pix = tiny_skia::Pixmap::decode_png(&png).unwrap();
        let dark = pix.pixels().iter().filter(|p| p.red() < 128).count();
        assert!(dark > 500, "{dark} dark pixels: no text rendered");
        let empty = svg_to_png(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="50"></svg>"#,
            2.0,
        )
        .unwrap();
        let pix = tiny_skia::Pixmap::decode_png(&empty).unwrap();
        assert!(pix.pixels().iter().all(|p| p.red() == 255));
        assert!(svg_to_png("not svg", 1.0)
            .unwrap_err()
            .contains("invalid SVG"));
        assert!(svg_to_png(svg, 0.0).is_err());
    }
}
