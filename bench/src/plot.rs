//! The throughput plot: records/s against batch size (log x axis), one line per series
//! (consume-and-discard baseline, worker landing into Azurite, kcat reference), as SVG with
//! plotters' built-in text measurement, so no system font library is needed.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::config::ReportConfig;

/// One line of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (batch size, records/s), sorted by batch size.
    pub points: Vec<(f64, f64)>,
}

/// Errors drawing or writing the plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to draw.
    #[error(
        "no throughput points to plot into {path}: the results have no worker/baseline lines with a batch size"
    )]
    Empty {
        /// The SVG that was not written.
        path: PathBuf,
    },
    /// plotters failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// The SVG.
        path: PathBuf,
        /// plotters' error text.
        message: String,
    },
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The SVG.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// `bench plot`: draws records/s against batch size from the results file into `BENCH_SVG`.
pub fn command(config: ReportConfig) -> anyhow::Result<()> {
    let results = crate::results::read(&config.results.bench_results)?;
    let series = crate::report::throughput_series(&results);
    write(
        "Worker throughput vs batch size",
        &series,
        &config.bench_svg,
    )?;
    eprintln!("bench plot: wrote {}", config.bench_svg.display());
    Ok(())
}

/// Renders the plot as an SVG document.
pub fn render(title: &str, series: &[Series], path: &Path) -> Result<String, PlotError> {
    let points: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    if points.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_owned(),
        });
    }
    let draw = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let x_min = points
        .iter()
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    let x_max = points
        .iter()
        .map(|p| p.0)
        .fold(0.0, f64::max)
        .max(x_min * 10.0);
    // Headroom above the highest point keeps the legend (upper right) off the lines.
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.4;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d((x_min / 1.5..x_max * 1.5).log_scale(), 0f64..y_max)
            .map_err(|e| draw(&e))?;
        chart
            .configure_mesh()
            .x_desc("BATCH_SIZE (records per blob, log scale)")
            .y_desc("records/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{:.0}k", y / 1e3))
            .draw()
            .map_err(|e| draw(&e))?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(3),
                ))
                .map_err(|e| draw(&e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
                )
                .map_err(|e| draw(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

/// Renders and writes the plot to `path`, creating its folder.
pub fn write(title: &str, series: &[Series], path: &Path) -> Result<(), PlotError> {
    let svg = render(title, series, path)?;
    let io = |source| PlotError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, svg).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_in_the_legend_and_a_point_per_value() {
        let series = vec![
            Series {
                name: "baseline".into(),
                points: vec![(100.0, 2e5), (1e3, 2.1e5), (1e4, 2.2e5), (1e5, 2.2e5)],
            },
            Series {
                name: "worker".into(),
                points: vec![(100.0, 5e4), (1e3, 1.2e5), (1e4, 1.5e5), (1e5, 1.4e5)],
            },
        ];
        let svg = render("t", &series, Path::new("x.svg")).expect("renders");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(
            svg.contains("\nbaseline\n") && svg.contains("\nworker\n"),
            "legend names both series"
        );
        assert_eq!(svg.matches("<circle").count(), 8, "one marker per point");
    }

    #[test]
    fn no_points_is_an_error_naming_the_file() {
        let err = render(
            "t",
            &[Series {
                name: "x".into(),
                points: vec![],
            }],
            Path::new("out.svg"),
        )
        .expect_err("empty");
        assert!(err.to_string().contains("out.svg"), "{err}");
    }
}
