//! Image archives: docker-archive (`docker save`, `podman save`) and
//! oci-archive (a tar of an OCI layout), told apart by their members.
//!
//! The archive is indexed once (member name → offset and size, symlink
//! members → their targets) and members are then read straight from the
//! file, so nothing is extracted to disk. Paths named inside the archive
//! (`manifest.json`'s `Config` and `Layers`) are resolved only against member
//! names, never against the host file system. A compressed archive, or one
//! read from a pipe, is first copied (decompressed) to a temporary file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::compress;
use super::digest::Digest;
use super::layout::read_layout;
use super::oci::DockerArchiveItem;
use super::reference;
use super::source::{
    parse_config, platform_warning, read_limited, FormatError, ImportImage, LayerBlob, Source,
    MAX_CONFIG, MAX_DOCUMENT,
};
use crate::fsroot::clean;

/// Symlink members followed when resolving one name.
const MAX_MEMBER_LINKS: usize = 8;

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// An indexed, seekable, uncompressed tar archive.
pub struct ArchiveSource {
    file: File,
    members: HashMap<String, Member>,
    name: String,
    /// Keeps a decompressed copy alive.
    _temp: Option<tempfile::NamedTempFile>,
}

/// The formats an archive can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    DockerArchive,
    OciArchive,
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> FormatError + '_ {
    move |source| FormatError::Io {
        what: what.to_string(),
        source,
    }
}

fn member_name(raw: &[u8]) -> String {
    let comps = clean(raw);
    let parts: Vec<String> = comps
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    parts.join("/")
}

impl ArchiveSource {
    /// Opens an archive file, decompressing it to a file in `temp_dir` first
    /// if it is compressed.
    pub fn open(path: &Path, temp_dir: &Path) -> Result<ArchiveSource, FormatError> {
        let what = path.display().to_string();
        let mut file = File::open(path).map_err(io_err(&what))?;
        let meta = file.metadata().map_err(io_err(&what))?;
        let mut magic = [0u8; 4];
        let n = read_prefix(&mut file, &mut magic).map_err(io_err(&what))?;
        let plain = compress::Compression::sniff(&magic[..n]) == compress::Compression::None;
        if plain && meta.is_file() {
            return Self::index(file, None, what);
        }
        let file = File::open(path).map_err(io_err(&what))?;
        Self::from_reader(file, temp_dir, what)
    }

    /// Copies (and decompresses) a stream such as stdin to a temporary file
    /// in `temp_dir` and indexes it.
    pub fn from_reader<R: Read>(
        reader: R,
        temp_dir: &Path,
        name: String,
    ) -> Result<ArchiveSource, FormatError> {
        let mut temp =
            tempfile::NamedTempFile::new_in(temp_dir).map_err(io_err("temporary file"))?;
        let (_, mut plain) = compress::decompress(reader).map_err(io_err(&name))?;
        io::copy(&mut plain, temp.as_file_mut()).map_err(io_err(&name))?;
        let file = temp.reopen().map_err(io_err("temporary file"))?;
        Self::index(file, Some(temp), name)
    }

    fn index(
        mut file: File,
        temp: Option<tempfile::NamedTempFile>,
        name: String,
    ) -> Result<ArchiveSource, FormatError> {
        file.seek(SeekFrom::Start(0)).map_err(io_err(&name))?;
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(&mut file);
            let entries = archive.entries().map_err(io_err(&name))?;
            for (index, entry) in entries.enumerate() {
                // The tar reader's own messages quote header bytes (the
                // input's, not ours to echo): say what was wrong instead.
                let entry = entry.map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidData
                    | io::ErrorKind::Other
                    | io::ErrorKind::UnexpectedEof
                        if index == 0 =>
                    {
                        FormatError::NotAnArchive { what: name.clone() }
                    }
                    io::ErrorKind::InvalidData
                    | io::ErrorKind::Other
                    | io::ErrorKind::UnexpectedEof => FormatError::Invalid(format!(
                        "{name}: corrupt tar archive: member {} has a bad header",
                        index + 1
                    )),
                    _ => io_err(&name)(e),
                })?;
                let member = member_name(&entry.path_bytes());
                let kind = entry.header().entry_type();
                if kind.is_file() || kind.is_contiguous() {
                    members.insert(
                        member,
                        Member::File {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                } else if kind.is_symlink() || kind.is_hard_link() {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    let resolved = if kind.is_symlink() && !target.starts_with(b"/") {
                        // Relative to the member's directory.
                        let parent = member.rsplit_once('/').map_or("", |(dir, _)| dir);
                        let mut joined = parent.as_bytes().to_vec();
                        joined.push(b'/');
                        joined.extend_from_slice(&target);
                        member_name(&joined)
                    } else {
                        member_name(&target)
                    };
                    members.insert(member, Member::Link(resolved));
                } else {
                    members.remove(&member);
                }
            }
        }
        Ok(ArchiveSource {
            file,
            members,
            name,
            _temp: temp,
        })
    }

    /// Which format the archive is in.
    pub fn kind(&self) -> Result<ArchiveKind, FormatError> {
        if self.exists("index.json") {
            Ok(ArchiveKind::OciArchive)
        } else if self.exists("manifest.json") {
            Ok(ArchiveKind::DockerArchive)
        } else {
            Err(FormatError::NotAnArchive {
                what: self.name.clone(),
            })
        }
    }

    fn lookup(&self, path: &str) -> Option<(u64, u64)> {
        let mut name = member_name(path.as_bytes());
        for _ in 0..=MAX_MEMBER_LINKS {
            match self.members.get(&name)? {
                Member::File { offset, size } => return Some((*offset, *size)),
                Member::Link(target) => name = target.clone(),
            }
        }
        None
    }
}

fn read_prefix(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl Source for ArchiveSource {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), FormatError> {
        let what = format!("{path} in {}", self.name);
        let (offset, size) = self
            .lookup(path)
            .ok_or_else(|| FormatError::Missing { what: what.clone() })?;
        // Clones share the file offset; positioned reads (pread) do not use it.
        let file = self.file.try_clone().map_err(io_err(&what))?;
        Ok((
            Box::new(Positioned {
                file,
                pos: offset,
                end: offset + size,
            }),
            size,
        ))
    }

    fn exists(&self, path: &str) -> bool {
        self.lookup(path).is_some()
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Reads `[pos, end)` of a file with `pread`, independent of the file offset.
struct Positioned {
    file: File,
    pos: u64,
    end: u64,
}

impl Read for Positioned {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive member is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads every image in an archive.
pub fn read_archive(src: &ArchiveSource) -> Result<Vec<ImportImage>, FormatError> {
    match src.kind()? {
        ArchiveKind::OciArchive => {
            let mut images = read_layout(src)?;
            // Docker >= 25 writes both formats; borrow RepoTags for unnamed images.
            if src.exists("manifest.json") {
                if let Ok(items) = read_manifest_json(src) {
                    for image in images.iter_mut().filter(|i| i.names.is_empty()) {
                        let wanted = format!("blobs/sha256/{}", image.id.hex());
                        if let Some(item) = items
                            .iter()
                            .find(|item| member_name(item.config.as_bytes()) == wanted)
                        {
                            image.names = docker_names(&item.repo_tags, &mut image.warnings);
                        }
                    }
                }
            }
            Ok(images)
        }
        ArchiveKind::DockerArchive => read_docker_archive(src),
    }
}

fn read_manifest_json(src: &ArchiveSource) -> Result<Vec<DockerArchiveItem>, FormatError> {
    let bytes = read_limited(src, "manifest.json", "manifest.json", MAX_DOCUMENT)?;
    super::source::parse_json(&bytes, "manifest.json")
}

fn docker_names(tags: &[String], warnings: &mut Vec<String>) -> Vec<String> {
    let mut names = Vec::new();
    for tag in tags {
        match reference::normalize_docker(tag) {
            Ok(name) => names.push(name),
            Err(err) => warnings.push(format!("ignoring RepoTag: {err}")),
        }
    }
    names
}

fn read_docker_archive(src: &ArchiveSource) -> Result<Vec<ImportImage>, FormatError> {
    let items = read_manifest_json(src)?;
    if items.is_empty() {
        return Err(FormatError::Invalid(format!(
            "{}: manifest.json lists no image",
            src.describe()
        )));
    }
    let mut images = Vec::new();
    for item in items {
        let config_bytes = read_limited(
            src,
            &item.config,
            &format!("config {:?}", item.config),
            MAX_CONFIG,
        )?;
        let id = Digest::of(&config_bytes);
        let (config, diff_ids) =
            parse_config(&config_bytes, &format!("config {id}"), item.layers.len())?;
        let count = item.layers.len();
        let layers = item
            .layers
            .iter()
            .zip(diff_ids)
            .enumerate()
            .map(|(i, (path, diff_id))| {
                if !src.exists(path) {
                    return Err(FormatError::Missing {
                        what: format!(
                            "layer {} of {count} ({path:?}) in {}",
                            i + 1,
                            src.describe()
                        ),
                    });
                }
                Ok(LayerBlob {
                    path: path.clone(),
                    digest: None,
                    size: None,
                    what: format!("layer {} of {count} ({path})", i + 1),
                    diff_id,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut warnings = Vec::new();
        warnings.extend(platform_warning(&config));
        let names = docker_names(&item.repo_tags, &mut warnings);
        images.push(ImportImage {
            id,
            config_bytes,
            config,
            manifest: None,
            layers,
            names,
            warnings,
        });
    }
    Ok(images)
}
