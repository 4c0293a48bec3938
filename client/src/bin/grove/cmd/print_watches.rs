//! `printwatches`: whether the shell prints watch events (asks when given no argument).

use clap::{Parser, ValueEnum};
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "printwatches", no_binary_name = true, override_usage = "printwatches on|off")]
pub struct PrintWatches {
    pub switch: Option<Switch>,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl CommandArgs for PrintWatches {}

impl PrintWatches {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let Some(w) = &ctx.watches else { return Ok(Output::silent(json!({}))) };
        let state = match self.switch {
            Some(s) => {
                w.set_printing(s == Switch::On);
                s == Switch::On
            }
            None => w.printing(),
        };
        let word = if state { "on" } else { "off" };
        Ok(Output::text(format!("printwatches is {word}"), json!({"printwatches": state})))
    }
}
