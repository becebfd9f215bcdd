//! The claim gate's code (gate mode): the rolehop binary zipped as `bootstrap` (what Lambda's
//! `provided.al2023` runtime executes) and uploaded to S3 in the broker account under its
//! SHA-256, so a new binary is a new key, hence a changed template parameter, hence a function
//! update; the same binary uploads nothing.
//!
//! The zip is written here (stored, one entry, mode 0755, a fixed date): equal binaries give
//! byte-equal zips, and no zip library joins the dependency tree for a 60-line format.

use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

use super::error::{RolloutError, classify};
use super::execute::Rollout;
use super::report::Progress;

/// The template parameter naming the bucket that holds the gate's code (see
/// `rolehop_render`'s gate template).
pub const CODE_BUCKET_PARAM: &str = "GateCodeBucket";
/// The template parameter naming the code's key: its SHA-256, so new code is a new key and
/// CloudFormation updates the functions.
pub const CODE_KEY_PARAM: &str = "GateCodeKey";

/// The bucket rollout uses when none is named: one per broker account and region.
pub fn default_bucket(account: &str, region: &str) -> String {
    format!("rolehop-gate-code-{account}-{region}")
}

/// `rolehop-gate/<sha256 of the zip>.zip`.
pub fn code_key(zip: &[u8]) -> String {
    let digest = Sha256::digest(zip);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("rolehop-gate/{hex}.zip")
}

/// A zip holding `binary` as `bootstrap`, executable.
pub fn lambda_zip(binary: &[u8]) -> Result<Vec<u8>, String> {
    let size = u32::try_from(binary.len())
        .map_err(|_| "the binary is larger than a zip without ZIP64 holds (4 GiB)".to_owned())?;
    let name = b"bootstrap";
    let crc = crc32fast::hash(binary);
    // 1980-01-01 00:00, the zip epoch: the same bytes whenever it is built.
    let (time, date) = (0u16, (1u16 << 5) | 1);
    let mut out = Vec::with_capacity(binary.len() + 128);
    let u16le = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    // Local file header.
    u32le(&mut out, 0x0403_4b50);
    u16le(&mut out, 20); // version needed: 2.0
    u16le(&mut out, 0); // flags
    u16le(&mut out, 0); // stored
    u16le(&mut out, time);
    u16le(&mut out, date);
    u32le(&mut out, crc);
    u32le(&mut out, size);
    u32le(&mut out, size);
    u16le(&mut out, name.len() as u16);
    u16le(&mut out, 0);
    out.extend_from_slice(name);
    out.extend_from_slice(binary);
    let cd_offset = u32::try_from(out.len()).map_err(|_| "zip too large".to_owned())?;
    // Central directory: made by Unix (3), so the external attributes carry the file mode.
    u32le(&mut out, 0x0201_4b50);
    u16le(&mut out, (3 << 8) | 20);
    u16le(&mut out, 20);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, time);
    u16le(&mut out, date);
    u32le(&mut out, crc);
    u32le(&mut out, size);
    u32le(&mut out, size);
    u16le(&mut out, name.len() as u16);
    u16le(&mut out, 0); // extra
    u16le(&mut out, 0); // comment
    u16le(&mut out, 0); // disk
    u16le(&mut out, 0); // internal attributes
    u32le(&mut out, 0o100_755 << 16); // regular file, rwxr-xr-x
    u32le(&mut out, 0); // local header offset
    out.extend_from_slice(name);
    let cd_size = u32::try_from(out.len()).map_err(|_| "zip too large".to_owned())? - cd_offset;
    // End of central directory.
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, 1);
    u16le(&mut out, 1);
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    Ok(out)
}

impl Rollout {
    /// Puts the zip at `bucket`/`key` unless it is there already, creating the bucket (private:
    /// all public access blocked) when the broker account has none by that name.
    pub async fn upload_gate_code(
        &self,
        bucket: &str,
        key: &str,
        zip: Vec<u8>,
        progress: &dyn Progress,
    ) -> Result<(), RolloutError> {
        let s3 = &self.s3;
        if s3.head_bucket().bucket(bucket).send().await.is_err() {
            progress.step(&format!("creating bucket {bucket} for the gate's code"));
            let mut create = s3.create_bucket().bucket(bucket);
            if self.region != "us-east-1" {
                create = create.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            self.region.as_str(),
                        ))
                        .build(),
                );
            }
            create
                .send()
                .await
                .map_err(|e| classify("s3:CreateBucket", e))?;
            s3.put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(
                    aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                        .block_public_acls(true)
                        .ignore_public_acls(true)
                        .block_public_policy(true)
                        .restrict_public_buckets(true)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("s3:PutPublicAccessBlock", e))?;
        }
        if s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
        {
            progress.step(&format!(
                "gate code s3://{bucket}/{key} is already uploaded"
            ));
            return Ok(());
        }
        progress.step(&format!(
            "uploading the gate's code to s3://{bucket}/{key} ({} bytes)",
            zip.len()
        ));
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(zip))
            .send()
            .await
            .map_err(|e| classify("s3:PutObject", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// Python's zipfile, a reader that shares no code with this writer, reads the entry back
    /// with its bytes, CRC and executable mode.
    #[test]
    fn the_zip_holds_an_executable_bootstrap_any_reader_can_read() {
        let binary: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let zip = lambda_zip(&binary).unwrap();
        assert_eq!(zip, lambda_zip(&binary).unwrap(), "deterministic");
        let dir = std::env::temp_dir().join(format!("rolehop-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("code.zip"), &zip).unwrap();
        std::fs::write(dir.join("bin"), &binary).unwrap();
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); i=z.getinfo('bootstrap'); print(z.namelist(), oct(i.external_attr >> 16), z.testzip(), z.read('bootstrap') == open(sys.argv[2], 'rb').read())")
            .arg(dir.join("code.zip"))
            .arg(dir.join("bin"))
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "['bootstrap'] 0o100755 None True",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(code_key(&zip).starts_with("rolehop-gate/"));
        assert_eq!(code_key(&zip).len(), "rolehop-gate/".len() + 64 + 4);
    }
}
