//! The Delta tables' schemas: the five models' Arrow schemas mapped into Delta's type system, the
//! dead-letter table, and the `date` partition column.
//!
//! Delta has no unsigned integers, so (docs/DESIGN.md section 4):
//! - `UInt16` → `Int32` (`integer`): every u16 fits;
//! - `UInt64` → `Decimal128(20, 0)` (`decimal(20,0)`): every u64 fits, which `Int64` (`long`)
//!   would not: a hostile 2^64−1 attack value stays exact instead of failing the file or
//!   wrapping negative.
//!
//! Every other type is already a Delta type (`string`, `integer`, `long`, `timestamp`). The data
//! files hold these columns; `date` is a partition column, so it lives in each `add` action's
//! `partitionValues`, not in the files.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use deltalake::kernel::{DataType as DeltaType, PrimitiveType, StructField};
use model::schema::LogModel;

/// The partition column of every table: the UTC date of the raw blob's hour.
pub const PARTITION_COLUMN: &str = "date";

/// The dead-letter table's folder in `standard`.
pub const DEADLETTER_TABLE: &str = "_deadletter";

/// A table in `standard`: one per model, plus dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// A log model's table.
    Model(ModelTable),
    /// `_deadletter`.
    DeadLetter,
}

/// [`LogModel`] with an order (tables are committed in a fixed order, `etl_meta` last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelTable {
    /// `buffer_meta`.
    BufferMeta,
    /// `log_meta`.
    LogMeta,
    /// `lib_server_lobby`.
    LibServerLobby,
    /// `lib_server_game`.
    LibServerGame,
    /// `etl_meta`.
    EtlMeta,
}

impl From<LogModel> for Table {
    fn from(m: LogModel) -> Self {
        Table::Model(match m {
            LogModel::EtlMeta => ModelTable::EtlMeta,
            LogModel::BufferMeta => ModelTable::BufferMeta,
            LogModel::LogMeta => ModelTable::LogMeta,
            LogModel::LibServerLobby => ModelTable::LibServerLobby,
            LogModel::LibServerGame => ModelTable::LibServerGame,
        })
    }
}

impl Table {
    /// Every table, in commit order: dead letters and the row models first, `etl_meta` last, so
    /// that a blob's `etl_meta` row is the last thing of it to become visible.
    pub const ALL: [Table; 6] = [
        Table::DeadLetter,
        Table::Model(ModelTable::BufferMeta),
        Table::Model(ModelTable::LogMeta),
        Table::Model(ModelTable::LibServerLobby),
        Table::Model(ModelTable::LibServerGame),
        Table::Model(ModelTable::EtlMeta),
    ];

    /// The model, for model tables.
    pub fn model(self) -> Option<LogModel> {
        match self {
            Table::DeadLetter => None,
            Table::Model(m) => Some(match m {
                ModelTable::EtlMeta => LogModel::EtlMeta,
                ModelTable::BufferMeta => LogModel::BufferMeta,
                ModelTable::LogMeta => LogModel::LogMeta,
                ModelTable::LibServerLobby => LogModel::LibServerLobby,
                ModelTable::LibServerGame => LogModel::LibServerGame,
            }),
        }
    }

    /// The folder in `standard`.
    pub fn name(self) -> &'static str {
        self.model().map_or(DEADLETTER_TABLE, LogModel::name)
    }

    /// The table named `name`.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The Arrow schema of the table's data files (without the partition column).
    pub fn file_schema(self) -> SchemaRef {
        match self.model() {
            Some(m) => file_schema(m),
            None => DEADLETTER_SCHEMA.clone(),
        }
    }

    /// The Delta columns, the partition column last.
    pub fn columns(self) -> Result<Vec<StructField>, ArrowError> {
        let mut cols = self
            .file_schema()
            .fields()
            .iter()
            .map(|f| {
                Ok(StructField::new(
                    f.name().clone(),
                    delta_type(f.data_type())?,
                    f.is_nullable(),
                ))
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        cols.push(StructField::new(
            PARTITION_COLUMN.to_owned(),
            DeltaType::Primitive(PrimitiveType::Date),
            false,
        ));
        Ok(cols)
    }
}

/// The Delta type of a data-file column.
fn delta_type(t: &DataType) -> Result<DeltaType, ArrowError> {
    Ok(DeltaType::Primitive(match t {
        DataType::Utf8 => PrimitiveType::String,
        DataType::Int32 => PrimitiveType::Integer,
        DataType::Int64 => PrimitiveType::Long,
        DataType::Binary => PrimitiveType::Binary,
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some(_)) => {
            PrimitiveType::Timestamp
        }
        DataType::Decimal128(p, s) => PrimitiveType::decimal(*p, *s as u8)
            .map_err(|e| ArrowError::SchemaError(e.to_string()))?,
        other => {
            return Err(ArrowError::SchemaError(format!(
                "{other} has no Delta type in this contract"
            )));
        }
    }))
}

/// `UInt64` columns become `decimal(20,0)`.
pub const U64_DECIMAL: DataType = DataType::Decimal128(20, 0);

fn delta_field(f: &Field) -> Field {
    let t = match f.data_type() {
        DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => U64_DECIMAL,
        other => other.clone(),
    };
    Field::new(f.name(), t, f.is_nullable())
}

/// The data-file schema of `m`'s table.
pub fn file_schema(m: LogModel) -> SchemaRef {
    static SCHEMAS: LazyLock<Vec<SchemaRef>> = LazyLock::new(|| {
        LogModel::ALL
            .iter()
            .map(|m| {
                let fields: Vec<Field> =
                    m.schema().fields().iter().map(|f| delta_field(f)).collect();
                Arc::new(Schema::new(fields))
            })
            .collect()
    });
    let i = LogModel::ALL
        .iter()
        .position(|x| *x == m)
        .expect("every model is in ALL");
    SCHEMAS[i].clone()
}

/// The dead-letter table's data-file schema: where the record came from, why it is dead, and
/// its bytes.
pub static DEADLETTER_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source_blob", DataType::Utf8, false),
        Field::new("msg_id", DataType::Utf8, true),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        Field::new("line", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ]))
});

/// `batch` with its columns cast to `schema` (same names and order; only the unsigned columns
/// change type, without loss).
pub fn cast_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Decimal128Array, UInt64Array};
    use arrow::datatypes::Decimal128Type;

    #[test]
    fn no_table_has_an_unsigned_column_and_every_column_has_a_delta_type() {
        for t in Table::ALL {
            for f in t.file_schema().fields() {
                assert!(
                    !matches!(
                        f.data_type(),
                        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
                    ),
                    "{}.{}",
                    t.name(),
                    f.name()
                );
            }
            let cols = t.columns().expect("delta types");
            assert_eq!(
                cols.last().map(|c| c.name().as_str()),
                Some(PARTITION_COLUMN)
            );
        }
    }

    #[test]
    fn u64_max_survives_the_cast_to_decimal() {
        let s = Arc::new(Schema::new(vec![Field::new("v", DataType::UInt64, false)]));
        let b = RecordBatch::try_new(s, vec![Arc::new(UInt64Array::from(vec![0, u64::MAX]))])
            .expect("batch");
        let to = Arc::new(Schema::new(vec![Field::new("v", U64_DECIMAL, false)]));
        let c = cast_batch(&b, &to).expect("cast");
        let d: &Decimal128Array = c.column(0).as_primitive::<Decimal128Type>();
        assert_eq!(d.value(1), i128::from(u64::MAX));
    }

    #[test]
    fn tables_commit_etl_meta_last() {
        assert_eq!(Table::ALL.last().map(|t| t.name()), Some("etl_meta"));
        for t in Table::ALL {
            assert_eq!(Table::from_name(t.name()), Some(t));
        }
    }
}
