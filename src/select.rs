//! `aduana select`: one day's controls under the inspection capacity
//! (`aduana_refresh::selection`); `aduana audits`: the month's
//! post-clearance audits of importers (`aduana_refresh::audits`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aduana_engine::Session;
use aduana_refresh::RefreshError;
use aduana_refresh::selection::{
    Capacity, Policy, RankBy, SelectOptions, Strategy, published_days, select,
};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};

use crate::cli::{EngineArgs, Error, WarehouseArgs};

pub const SELECT_HELP: &str =
    "Capacity is per lane: --capacity 40 gives 40 physical (red) controls;
--capacity red=40,yellow=60 adds 60 documentary (yellow) ones. With --by office
every office has that capacity; --capacities FILE gives offices their own
(CSV with a header: office_code,red,yellow; offices it leaves out get
--capacity, or no controls without it). Of each lane, --explore (default
0.1) is exploration: random controls (--strategy random), or at least
--min-random at random and the rest on the highest-ranked items of importers
never inspected (--strategy novelty), drawn from the items the model did not
pick with probability proportional to their rank value (--strategy
proportional: monetary-unit sampling), or on the items the evidence alone
(price, tariff, origin; without what inspections taught the model) ranks
highest among those the model did not pick (--strategy evidence; random when
the model has not learned from inspections). The rest goes to the model's ranking
(--rank revenue: expected revenue recovered; probability: chance of a hit).
AEO traders count --aeo-factor of an ordinary item in the ranking and the
draw. The selection is published as risk.selections (one file per day,
written whole); a day already published is kept unless --replace.";

#[derive(Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    Random,
    Novelty,
    Proportional,
    Evidence,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RankArg {
    Revenue,
    Probability,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    Office,
}

/// How a selection explores and ranks (shared by `select` and `audits`).
#[derive(Args)]
pub struct ExplorationArgs {
    /// Share of each lane's capacity (or of the audits) spent on exploration
    #[arg(long, default_value_t = Policy::default().explore, value_name = "SHARE")]
    pub explore: f64,
    /// How exploration is spent
    #[arg(long, value_enum, default_value = "random")]
    pub strategy: StrategyArg,
    /// With --strategy novelty, proportional or evidence: the share of each lane kept uniformly random
    #[arg(long, default_value_t = Policy::default().min_random, value_name = "SHARE")]
    pub min_random: f64,
    /// What the model's share ranks by
    #[arg(long, value_enum, default_value = "revenue")]
    pub rank: RankArg,
    /// Weight of an authorised economic operator's item, in (0, 1]
    #[arg(long, default_value_t = Policy::default().aeo_factor, value_name = "FACTOR")]
    pub aeo_factor: f64,
    /// Seed of the random controls
    #[arg(long, default_value_t = Policy::default().seed)]
    pub seed: u64,
}

impl ExplorationArgs {
    fn policy(&self) -> Policy {
        Policy {
            explore: self.explore,
            strategy: match self.strategy {
                StrategyArg::Random => Strategy::Random,
                StrategyArg::Novelty => Strategy::Novelty,
                StrategyArg::Proportional => Strategy::Proportional,
                StrategyArg::Evidence => Strategy::Evidence,
            },
            min_random: self.min_random,
            rank_by: match self.rank {
                RankArg::Revenue => RankBy::Revenue,
                RankArg::Probability => RankBy::Probability,
            },
            aeo_factor: self.aeo_factor,
            seed: self.seed,
        }
    }
}

#[derive(Args)]
pub struct SelectArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The declaration day to select from
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: NaiveDate,
    /// Also select every later day through this one (each day its own
    /// selection and capacity; days without declarations are skipped, an
    /// error when no day has any; refused whole when a day of it is
    /// already published, unless --replace)
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub until: Option<NaiveDate>,
    /// Controls per lane: N (red) or red=N,yellow=M; with --capacities, of
    /// the offices the file leaves out (none when not given)
    #[arg(long, value_name = "CAPACITY", required_unless_present = "capacities")]
    pub capacity: Option<String>,
    /// Count the capacity per office
    #[arg(long, value_name = "SCOPE")]
    pub by: Option<ScopeArg>,
    /// Per-office capacities (CSV: office_code,red,yellow); implies --by office
    #[arg(long, value_name = "FILE")]
    pub capacities: Option<PathBuf>,
    #[command(flatten)]
    pub exploration: ExplorationArgs,
    /// Replace the day's published selection
    #[arg(long)]
    pub replace: bool,
}

/// `N` or `red=N,yellow=M` (either lane may be left out).
pub fn parse_capacity(text: &str) -> Result<Capacity, Error> {
    let count = |v: &str, what: &str| {
        v.trim().parse::<usize>().map_err(|_| {
            format!("capacity {what}: '{v}' is not a whole number of controls (in '{text}')")
        })
    };
    if !text.contains('=') {
        return Ok(Capacity {
            red: count(text, "of the red lane")?,
            yellow: 0,
        });
    }
    let (mut red, mut yellow) = (None, None);
    for part in text.split(',') {
        let (lane, value) = part
            .split_once('=')
            .ok_or_else(|| format!("capacity: '{part}' is not LANE=N (in '{text}')"))?;
        let (slot, what) = match lane.trim().to_ascii_lowercase().as_str() {
            "red" => (&mut red, "of the red lane"),
            "yellow" => (&mut yellow, "of the yellow lane"),
            other => {
                return Err(format!(
                    "capacity: unknown lane '{other}' (red: physical, yellow: documentary)"
                )
                .into());
            }
        };
        // Which of two values was meant cannot be told.
        if slot.replace(count(value, what)?).is_some() {
            return Err(format!("capacity {what} is given twice (in '{text}')").into());
        }
    }
    Ok(Capacity {
        red: red.unwrap_or(0),
        yellow: yellow.unwrap_or(0),
    })
}

/// The per-office capacities of a CSV file `office_code,red,yellow`.
fn read_capacities(path: &Path) -> Result<BTreeMap<String, Capacity>, Error> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("capacities file {shown}: {e}"))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .map(|(_, l)| {
            l.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    if header != ["office_code", "red", "yellow"] {
        return Err(format!(
            "capacities file {shown}: the header must be office_code,red,yellow, not '{}'",
            header.join(",")
        )
        .into());
    }
    let mut capacities = BTreeMap::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [office, red, yellow] = fields[..] else {
            return Err(format!(
                "capacities file {shown}, line {}: expected 3 fields, found {}",
                n + 1,
                fields.len()
            )
            .into());
        };
        let capacity = parse_capacity(&format!("red={red},yellow={yellow}"))
            .map_err(|e| format!("capacities file {shown}, line {}: {e}", n + 1))?;
        if capacities.insert(office.to_string(), capacity).is_some() {
            return Err(format!(
                "capacities file {shown}, line {}: office {office} appears twice",
                n + 1
            )
            .into());
        }
    }
    Ok(capacities)
}

pub async fn run(args: SelectArgs) -> Result<(), Error> {
    let capacity = match &args.capacity {
        Some(text) => parse_capacity(text)?,
        None => Capacity::default(),
    };
    let office_capacities = match &args.capacities {
        Some(path) => read_capacities(path)?,
        None => BTreeMap::new(),
    };
    let last = args.until.unwrap_or(args.date);
    if last < args.date {
        return Err(format!("--until {last} is before --date {}", args.date).into());
    }
    let days = || args.date.iter_days().take_while(move |d| *d <= last);
    let mut options = SelectOptions {
        day: args.date,
        capacity,
        by_office: args.by.is_some(),
        office_capacities,
        policy: args.exploration.policy(),
        replace: args.replace,
    };
    let warehouse = args.warehouse.open().await?;
    let session = Session::open(warehouse, &args.engine.options()?).await?;
    if !args.replace {
        let published = published_days(&session, days()).await?;
        if let Some(first) = published.first() {
            let more = match published.len() {
                1 => String::new(),
                n => format!(" and {} more day(s) of the range", n - 1),
            };
            return Err(RefreshError::BadInput(format!(
                "a selection for {first}{more} is already published; controls may be under way: \
                 pass --replace to replace, or select other days (nothing was written)"
            ))
            .into());
        }
    }
    let mut selected_days = 0;
    for day in days() {
        options.day = day;
        let summary = match select(&session, &options).await {
            Ok(summary) => summary,
            Err(RefreshError::NoItems(_)) if args.until.is_some() => {
                println!("no declaration items dated {day}: nothing to select");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        selected_days += 1;
        let counts: Vec<String> = summary
            .counts
            .iter()
            .map(|((lane, by), n)| format!("{lane}/{by} {n}"))
            .collect();
        println!(
            "selected {} of {} items declared {day} ({}), ranked by model {}{}; published {}",
            summary.selected,
            summary.items,
            counts.join(", "),
            summary.model_version,
            if summary.learned {
                ""
            } else {
                " (unsupervised: it has not learned from inspections)"
            },
            summary.file
        );
        if !summary.idle_offices.is_empty() {
            println!(
                "note: no items declared {day} at {} (given a capacity in {})",
                summary.idle_offices.join(", "),
                args.capacities
                    .as_deref()
                    .map_or("the capacities file".into(), |p| p.display().to_string())
            );
        }
    }
    if selected_days == 0 {
        // As for one day without items: most likely a mistyped range.
        return Err(RefreshError::NoItems(format!(
            "no declaration items dated {} through {last} to select from",
            args.date
        ))
        .into());
    }
    Ok(())
}

pub const AUDITS_HELP: &str =
    "The blue lane: importers ranked by the expected revenue of their items
(expected_revenue: the learned model's probability x revenue, or risk
score x revenue at risk, as the trader risk ranks, when the model has no
learned part) over the 12 months before --month; of the --capacity audits, --explore
(default 0.1) is exploration as in `aduana select` (random importers; with
--strategy novelty importers never inspected; with proportional a draw in
proportion to revenue at risk; with evidence the importers the evidence alone
ranks highest among those the model left), AEO traders at --aeo-factor.
Published as risk.audit_selections (one file per month, written whole); a
month already published is kept unless --replace.";

#[derive(Args)]
pub struct AuditsArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The month the audits are for
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: NaiveDate,
    /// Audits available that month
    #[arg(long, value_name = "N")]
    pub capacity: usize,
    #[command(flatten)]
    pub exploration: ExplorationArgs,
    /// Replace the month's published audit selection
    #[arg(long)]
    pub replace: bool,
}

fn parse_month(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is not a month (YYYY-MM)"))
}

pub async fn audits(args: AuditsArgs) -> Result<(), Error> {
    use aduana_refresh::audits::{AuditOptions, select_audits};
    let options = AuditOptions {
        month: args.month,
        capacity: args.capacity,
        policy: args.exploration.policy(),
        replace: args.replace,
    };
    let warehouse = args.warehouse.open().await?;
    let session = Session::open(warehouse, &args.engine.options()?).await?;
    let summary = select_audits(&session, &options).await?;
    println!(
        "selected {} of {} importers for audit in {} ({} by the model, {} random, {} explored by {}), \
         ranked by model {}; published {}",
        summary.selected,
        summary.importers,
        args.month.format("%Y-%m"),
        summary.selected - summary.random - summary.explored,
        summary.random,
        summary.explored,
        options.policy.strategy.name(),
        summary.model_version,
        summary.file
    );
    Ok(())
}
