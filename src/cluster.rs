//! `aduana scheduler` and `aduana executor`: the Ballista processes.

use crate::cli::*;

/// `aduana scheduler`: a Ballista scheduler until stopped.
pub(crate) async fn scheduler(args: SchedulerArgs) -> Result<(), Error> {
    let warehouse = args.warehouse.open().await?;
    let session = aduana_cluster::open(warehouse, &args.engine.options()?).await?;
    eprintln!(
        "aduana scheduler on {} for {} (clients: --cluster df://{})",
        args.bind,
        session.warehouse().location().display,
        args.bind
    );
    aduana_cluster::run_scheduler(args.bind, &session, args.executor_timeout).await?;
    Ok(())
}

/// `aduana executor`: a Ballista executor until stopped.
pub(crate) async fn executor(args: ExecutorArgs) -> Result<(), Error> {
    let (host, port) = args
        .scheduler
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--scheduler {:?}: expected HOST:PORT", args.scheduler))?;
    let warehouse = args.warehouse.open().await?;
    let session = aduana_cluster::open(warehouse, &args.engine.options()?).await?;
    let options = aduana_cluster::ExecutorOptions {
        scheduler_host: host,
        scheduler_port: port,
        bind_host: args.bind_host.clone(),
        port: args.port,
        grpc_port: args.grpc_port,
        work_dir: args.work_dir.as_ref().map(|dir| dir.display().to_string()),
        slots: args.concurrent_tasks,
    };
    eprintln!(
        "aduana executor on {}:{} for {}, serving scheduler {}",
        args.bind_host,
        args.port,
        session.warehouse().location().display,
        args.scheduler
    );
    aduana_cluster::run_executor(options, &session).await?;
    Ok(())
}
